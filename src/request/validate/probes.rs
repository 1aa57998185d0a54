//! The checks that need the backend's state: overwrite protection (rule 41, create-only
//! writes), part sizes of a complete, part-copy sources, re-created buckets, and the backend
//! account's id. They ask through [`Probe`], a typed client of the gateway's own small
//! requests: the gateway answers it with signed requests built like every backend request
//! (an operation and its parameters, `backend_call`); the unit tests below with a fake.

use crate::request::*;
use async_trait::async_trait;
use std::collections::HashMap;

/// How a write that must not replace an object is protected.
pub(in crate::request) enum Overwrite {
    /// Nothing to protect, or the gateway already checked.
    Unguarded,
    /// The backend refuses atomically: the gateway adds `If-None-Match: *`.
    AskBackend,
}

/// Where a probe looks: the validated target (bucket, and key where it has one) and its route.
#[derive(Clone, Copy)]
pub(in crate::request) struct At<'a> {
    pub(in crate::request) target: &'a Target,
    pub(in crate::request) route: &'a Route<'a>,
}

/// One page of an upload's parts.
pub(in crate::request) enum PartsPage {
    /// Sizes by part number, and the marker of the next page.
    Listed(complete::PartSizes),
    /// The backend does not know the upload (NoSuchUpload), or its bucket (NoSuchBucket).
    Gone(HcpCode),
    /// The listing failed (unreachable, unreadable): the backend's answer to the request
    /// itself decides then.
    Unknown,
}

/// What the checks ask a backend, one typed question a method.
#[async_trait]
pub(in crate::request) trait Probe: Send + Sync {
    /// The status of a HEAD of the bucket, `None` if the backend could not be reached.
    async fn bucket_status(&self, at: At<'_>) -> Option<u16>;
    /// The backend's answer header to a HEAD of the object (of `version`), whatever its status
    /// (`None`: unreachable); for an object encrypted with a customer's key, which a HEAD
    /// without the key cannot read, its lock as its sub-resources answer it.
    async fn object_answer(&self, at: At<'_>, version: Option<&str>) -> Option<ResponseHeader>;
    /// Whether the bucket's versioning is Enabled.
    async fn versioning_enabled(&self, at: At<'_>) -> bool;
    /// Whether a write or a delete naming no version replaces the target key's `null`
    /// version at the backend, wherever it stands (suspended versioning) — for a bucket
    /// target, whether it may for some key; `true` where the backend could not say.
    async fn replaces_null_version(&self, at: At<'_>) -> bool;
    /// Whether the bucket keeps S3 Object Lock (its configuration says Enabled).
    async fn bucket_locked(&self, at: At<'_>) -> bool;
    /// Whether the bucket keeps S3 Object Lock, for a delete where the tenant keeps no HCP
    /// retention: `false` also where the backend could not say, and for a few seconds after.
    async fn may_keep_locks(&self, at: At<'_>) -> bool;
    /// Whether any key of the bucket starts with `prefix`; `None` where the backend did not
    /// say (no answer, or neither a listing nor a missing bucket).
    async fn any_key_under(&self, at: At<'_>, prefix: &[u8]) -> Option<bool>;
    /// Whether the bucket lists the target's key itself (a listing needs no customer key
    /// where a HEAD does); `None` where the backend did not say.
    async fn key_listed(&self, at: At<'_>) -> Option<bool>;
    /// The key's ETag as the bucket lists it (a listing needs no customer key where a HEAD
    /// does): `Some(None)` where the key is not listed; `None` where the backend did not say.
    async fn listed_etag(&self, at: At<'_>) -> Option<Option<String>>;
    /// The version id of the key's newest version (or delete marker) as a version listing
    /// names it (a listing needs no customer key): `Some(None)` where the key has none;
    /// `None` where the backend did not say.
    async fn newest_version(&self, at: At<'_>) -> Option<Option<String>>;
    /// A page of at most `max` of the upload's parts, from `marker` on.
    async fn parts_page(
        &self,
        at: At<'_>,
        upload_id: &str,
        (marker, max): (Option<&str>, u32),
    ) -> PartsPage;
}

#[async_trait]
impl Probe for Gateway {
    async fn bucket_status(&self, at: At<'_>) -> Option<u16> {
        let bucket = bucket_of(at.target);
        let head = self.backend_call(Operation::HeadBucket, Params::default(), &bucket, at.route);
        head.await.map(|(h, _)| h.status.as_u16())
    }

    async fn object_answer(&self, at: At<'_>, version: Option<&str>) -> Option<ResponseHeader> {
        let mut params = Params::default();
        if let Some(v) = version {
            params.set("versionId", v);
        }
        let head = self.backend_call(Operation::HeadObject, params, at.target, at.route);
        let head = head.await.map(|(h, _)| h)?;
        if head.status != 400 {
            return Some(head);
        }
        // An object encrypted with a customer's key (SSE-C) is not HEADed without the key
        // (400); its lock is read by the sub-resources, which need none. (Refused too — a
        // version the backend cannot read —, the HEAD's 400 is the answer; failing, nothing
        // is known: a 400 then would be taken for the backend's refusal of the request.)
        match self.lock_by_subresources(at, version).await {
            Ok(lock) => Some(lock),
            Err(Unread::Refused) => Some(head),
            Err(Unread::Failed) => None,
        }
    }

    async fn versioning_enabled(&self, at: At<'_>) -> bool {
        // (Unknown is "not enabled": the no-overwrite rule then refuses, the safe side.)
        self.bucket_versioning(at).await.unwrap_or(false)
    }

    async fn replaces_null_version(&self, at: At<'_>) -> bool {
        self.replaces_null(at).await
    }

    async fn bucket_locked(&self, at: At<'_>) -> bool {
        self.lock_known(at).await == Some(true)
    }

    async fn may_keep_locks(&self, at: At<'_>) -> bool {
        let name = bucket_key(at);
        if self.unlocked_buckets.contains_key(&name) {
            return false;
        }
        // (A backend that cannot say — one without S3's Object Lock API, or failing — is
        // taken at its word on the delete itself, for a few seconds too.)
        let locked = self.lock_known(at).await == Some(true);
        if !locked {
            self.unlocked_buckets.insert(name, ());
        }
        locked
    }

    async fn any_key_under(&self, at: At<'_>, prefix: &[u8]) -> Option<bool> {
        let (head, body) = self.first_key_under(at, prefix).await?;
        match head.status.as_u16() {
            200 => Some(rewrite::has_element(&body, b"Contents")),
            // (No bucket, no key: the write itself is answered NoSuchBucket — OBS says so with
            // 400 InvalidBucket.)
            404 => Some(false),
            // A listing refused (a backend account without s3:ListBucket; moto 5.2, which
            // refuses the signature of any `/` in a query value): no folder known. What the
            // folder check guards is a name beside a folder, never an object's data, which the
            // HEAD guards (and fails closed).
            400..500 => Some(false),
            _ => None,
        }
    }

    async fn key_listed(&self, at: At<'_>) -> Option<bool> {
        Some(self.listing_of_key(at, false).await?.is_some())
    }

    async fn newest_version(&self, at: At<'_>) -> Option<Option<String>> {
        match self.listing_of_key(at, true).await? {
            // (The first entry's: the key's newest.)
            Some(body) => crate::hcp::xml::leaf_text(&body, "VersionId").map(Some),
            None => Some(None),
        }
    }

    async fn listed_etag(&self, at: At<'_>) -> Option<Option<String>> {
        match self.listing_of_key(at, false).await? {
            // (The first entry's: the key's own.)
            Some(body) => crate::hcp::xml::leaf_text(&body, "ETag").map(Some),
            None => Some(None),
        }
    }

    async fn parts_page(
        &self,
        at: At<'_>,
        upload_id: &str,
        (marker, max): (Option<&str>, u32),
    ) -> PartsPage {
        let mut params = Params::default()
            .with("uploadId", upload_id)
            .with("max-parts", max.to_string());
        if let Some(m) = marker {
            params.set("part-number-marker", m);
        }
        match self
            .backend_call(Operation::ListParts, params, at.target, at.route)
            .await
        {
            Some((h, body)) if h.status == 404 => {
                let code = crate::request::respond::rewrite::parse_backend_error(&body).code;
                match code.as_deref() {
                    Some("NoSuchBucket") => PartsPage::Gone(HcpCode::NoSuchBucket),
                    _ => PartsPage::Gone(HcpCode::NoSuchUpload),
                }
            }
            Some((h, body)) if obs_no_bucket(at, h.status.as_u16(), &body) => {
                PartsPage::Gone(HcpCode::NoSuchBucket)
            }
            Some((h, body)) if h.status == 200 => complete::parse_list_parts(&body)
                .map(PartsPage::Listed)
                .unwrap_or(PartsPage::Unknown),
            _ => PartsPage::Unknown,
        }
    }
}

impl Gateway {
    /// Whether the bucket keeps S3 Object Lock (its configuration says Enabled; kept once
    /// seen, as Object Lock is never turned off); `None` where the backend did not say (no
    /// answer, an error other than a missing configuration or bucket).
    pub(in crate::request) async fn lock_known(&self, at: At<'_>) -> Option<bool> {
        let name = bucket_key(at);
        let cached = self.locked_buckets.contains_key(&name);
        self.metrics.cache_lookup("locked_bucket", cached);
        if cached {
            return Some(true);
        }
        let params = Params::default().with("object-lock", "");
        let bucket = bucket_of(at.target);
        let op = Operation::GetObjectLockConfiguration;
        let (head, body) = self.backend_call(op, params, &bucket, at.route).await?;
        let enabled = "<ObjectLockEnabled>Enabled</ObjectLockEnabled>";
        let locked = match head.status.as_u16() {
            200 => String::from_utf8_lossy(&body).contains(enabled),
            // (No configuration, or no bucket: AWS's, RGW's and the store's 404s.)
            404 => false,
            _ => return None,
        };
        if locked {
            self.locked_buckets.insert(name, ());
        }
        Some(locked)
    }

    /// Whether the bucket keeps versions of the target's object (its versioning is Enabled,
    /// and MinIO's exclusions leave the object out of none), as the backend last said within
    /// 5 s; `None` when the backend could not say.
    pub(in crate::request) async fn bucket_versioning(&self, at: At<'_>) -> Option<bool> {
        let key = at.target.key();
        let versioned = self.versioning_of(at).await?;
        Some(versioned.keeps(key.as_deref()))
    }

    /// [`Probe::replaces_null_version`], as every write asks it (without the trait's boxed
    /// future).
    pub(in crate::request) async fn replaces_null(&self, at: At<'_>) -> bool {
        // (s3s-fs keeps no versions: nothing of the kind.)
        let s3s_fs = at.route.backend.target.engine() == Some(crate::config::LocalEngine::S3sFs);
        if s3s_fs {
            return false;
        }
        let key = at.target.key();
        // (Of the bucket: whether it may for some key. Unknown: it may — `check_null_version`
        // looks, and a backend that says nothing there either is 503.)
        let Some(versioned) = self.versioning_of(at).await else {
            return true;
        };
        match key {
            Some(key) => versioned.replaces_null(&key),
            None => matches!(versioned, Versioned::Suspended | Versioned::Except(_)),
        }
    }

    /// The bucket's versioning as the gateway judges by it, as last said within 5 s (`None`:
    /// the backend could not say).
    async fn versioning_of(&self, at: At<'_>) -> Option<Versioned> {
        // (Looked up under a name spelled in a buffer the thread keeps: every write asks.)
        let cached = with_bucket_key(at, |name| self.versioned_buckets.get(name));
        self.metrics.cache_lookup("versioning", cached.is_some());
        if cached.is_some() {
            return cached;
        }
        let name = bucket_key(at);
        let asked = self.versioned_buckets.generation(&name);
        // Where the gateway keeps HCP's status (the backend keeps every version): that.
        match self.kept_versioning(at).await {
            Ok(Some(status)) => {
                let versioned = Versioned::from(status.enabled());
                self.versioned_buckets.keep(name, versioned.clone(), asked);
                return Some(versioned);
            }
            Ok(None) => {}
            Err(cause) => {
                tracing::warn!(bucket = ?at.route.backend_bucket, "versioning records: {cause}");
                return None;
            }
        }
        let params = Params::default().with("versioning", "");
        let bucket = bucket_of(at.target);
        let got = self.backend_call(Operation::GetBucketVersioning, params, &bucket, at.route);
        let versioned = match got.await {
            Some((h, body)) if h.status == 200 => Versioned::read(&body),
            _ => return None,
        };
        self.versioned_buckets.keep(name, versioned.clone(), asked);
        Some(versioned)
    }
}

/// A bucket's versioning as the gateway judges by it: off, on, or on but for the objects
/// MinIO's exclusions name (`ExcludedPrefixes`, `ExcludeFolders`), which keep no versions.
#[derive(Debug, Clone)]
pub(in crate::request) enum Versioned {
    Off,
    /// The backend's versioning is Suspended: a write or a delete naming no version replaces
    /// a key's `null` version, wherever it stands among the key's versions.
    Suspended,
    On,
    Except(Arc<Excluded>),
}

#[derive(Debug, Default)]
pub(in crate::request) struct Excluded {
    /// Patterns an excluded name begins with (`*` any run of characters: MinIO's `prefix*`).
    prefixes: Vec<Vec<u8>>,
    /// Folders (names that end with `/`).
    folders: bool,
}

impl From<bool> for Versioned {
    fn from(enabled: bool) -> Versioned {
        match enabled {
            true => Versioned::On,
            false => Versioned::Off,
        }
    }
}

impl Versioned {
    /// A versioning document's: `Enabled`, with MinIO's exclusions if it names any.
    fn read(doc: &[u8]) -> Versioned {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_reader(doc);
        let (mut path, mut excluded) = (Vec::<Vec<u8>>::new(), Excluded::default());
        let (mut enabled, mut suspended) = (false, false);
        while let Ok(event) = reader.read_event() {
            match event {
                Event::Start(e) => path.push(e.local_name().as_ref().to_vec()),
                Event::End(_) => {
                    path.pop();
                }
                Event::Text(t) => {
                    let Ok(text) = t.decode() else { continue };
                    let text = text.trim();
                    match path.iter().map(Vec::as_slice).collect::<Vec<_>>()[..] {
                        [_, b"Status"] => {
                            enabled = text == "Enabled";
                            suspended = text == "Suspended";
                        }
                        [_, b"ExcludeFolders"] => excluded.folders = text == "true",
                        [_, b"ExcludedPrefixes", b"Prefix"] if !text.is_empty() => {
                            excluded.prefixes.push(text.as_bytes().to_vec());
                        }
                        _ => {}
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        match (enabled, excluded.folders || !excluded.prefixes.is_empty()) {
            (false, _) if suspended => Versioned::Suspended,
            (false, _) => Versioned::Off,
            (true, false) => Versioned::On,
            (true, true) => Versioned::Except(Arc::new(excluded)),
        }
    }

    /// Whether the object named `key` keeps versions (`None`: the bucket's own question).
    fn keeps(&self, key: Option<&[u8]>) -> bool {
        match (self, key) {
            (Versioned::Off | Versioned::Suspended, _) => false,
            (Versioned::On, _) | (Versioned::Except(_), None) => true,
            (Versioned::Except(excluded), Some(key)) => {
                !(excluded.folders && key.ends_with(b"/")
                    || excluded.prefixes.iter().any(|p| begins_like(key, p)))
            }
        }
    }
}

impl Versioned {
    /// Whether a write or a delete naming no version of `key` replaces its `null` version,
    /// which may be an old one behind newer versions: suspended versioning, and MinIO's
    /// exclusions, which leave an object out of an Enabled bucket's versions.
    fn replaces_null(&self, key: &[u8]) -> bool {
        match self {
            Versioned::Suspended => true,
            Versioned::Except(_) => !self.keeps(Some(key)),
            Versioned::Off | Versioned::On => false,
        }
    }
}

/// Whether `name` begins with `pattern`, where `*` in it matches any run of bytes. (Nothing
/// is anchored at the end, so each piece after a `*` is taken where it first comes: one pass.)
fn begins_like(name: &[u8], pattern: &[u8]) -> bool {
    let mut pieces = pattern.split(|&b| b == b'*');
    let first = pieces.next().unwrap_or_default();
    if !name.starts_with(first) {
        return false;
    }
    let mut at = first.len();
    pieces.all(|piece| match memchr::memmem::find(&name[at..], piece) {
        Some(found) => {
            at += found + piece.len();
            true
        }
        None => false,
    })
}

/// What the backend said of buckets' versioning, for 5 s. A change of versioning through this
/// gateway forgets its bucket when it is sent and again when it is answered, and an answer read
/// while such a change of its bucket was under way is used once but not kept: a read that
/// began before a suspension and ended after it can no longer stand for 5 s as "enabled" —
/// which would let the no-overwrite rule pass writes that replace the only copy of an object.
/// The changes are counted per bucket (in 64 shards), so one tenant changing its buckets'
/// versioning does not keep other tenants' reads from being cached.
pub(in crate::request) struct VersioningCache {
    answers: moka::sync::Cache<String, Versioned>,
    /// Counts the forgettings of the buckets in each shard; an answer is kept only if none of
    /// its shard happened while it was read.
    changes: [std::sync::atomic::AtomicU64; SHARDS],
}

const SHARDS: usize = 64;

impl Default for VersioningCache {
    fn default() -> Self {
        VersioningCache {
            answers: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(5))
                .build(),
            changes: std::array::from_fn(|_| std::sync::atomic::AtomicU64::new(0)),
        }
    }
}

impl VersioningCache {
    fn get(&self, bucket: &str) -> Option<Versioned> {
        self.answers.get(bucket)
    }

    fn counter(&self, bucket: &str) -> &std::sync::atomic::AtomicU64 {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::hash::DefaultHasher::new();
        bucket.hash(&mut h);
        &self.changes[(h.finish() % SHARDS as u64) as usize]
    }

    fn generation(&self, bucket: &str) -> u64 {
        self.counter(bucket)
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Keeps an answer read since `asked` (a [`Self::generation`] of the bucket) unless the
    /// bucket (or one of its shard) was forgotten meanwhile.
    fn keep(&self, bucket: String, versioned: Versioned, asked: u64) {
        if self.generation(&bucket) == asked {
            self.answers.insert(bucket.clone(), versioned);
            // (A forgetting between the check and the insert removes it again here.)
            if self.generation(&bucket) != asked {
                self.answers.invalidate(&bucket);
            }
        }
    }

    /// Forgets the bucket's versioning: its versioning may be changing (or the bucket going).
    pub(in crate::request) fn forget(&self, bucket: &str) {
        self.counter(bucket)
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.answers.invalidate(bucket);
    }
}

/// A copy's source as the gateway's own requests address it: the object in the same tenant.
pub(in crate::request) fn source_target(at: At<'_>, source: &sign::CopySource) -> Target {
    let mut raw_key = String::new();
    sigv4::uri_encode(&source.key, true, &mut raw_key);
    Target {
        tenant: at.target.tenant.clone(),
        bucket: Some(source.bucket.as_str().into()),
        raw_key: Some(raw_key.into_bytes().into()),
        virtual_host: false,
    }
}

/// Whether a HEAD kept at `kept` (seconds since the epoch; 0: none ever) may still be kept:
/// within its lifetime and a second (the clock is read only where one was kept).
fn may_still_be_kept(kept: u64, now: impl FnOnce() -> u64) -> bool {
    let lifetime = crate::request::SOURCE_HEAD_TTL.as_secs() + 1;
    kept != 0 && now().saturating_sub(kept) <= lifetime
}

/// Seconds since the epoch (0 for a clock before it).
fn epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where a copy source's HEAD is kept (`Gateway::copy_source_answer`): by backend, the backend's
/// bucket name (tenants may share client names), the key as `source_target` encodes it and the
/// version named.
fn source_head_key(at: At<'_>, bucket: &str, encoded_key: &[u8], version: Option<&str>) -> String {
    let backend = &at.route.backend.name;
    let bucket = route::backend_bucket_name(at.route.tenant, bucket);
    let version = version.unwrap_or_default();
    let mut key =
        String::with_capacity(backend.len() + bucket.len() + encoded_key.len() + version.len() + 4);
    key.push_str(backend);
    key.push('\n');
    key.push_str(&bucket);
    key.push('\n');
    key.push_str(&String::from_utf8_lossy(encoded_key));
    key.push('\n');
    // (A version named, `v` and its id, or none: `-`.)
    key.push(if version.is_empty() { '-' } else { 'v' });
    key.push_str(version);
    key
}

/// The route to a copy's source (`source_target`): the same backend and credentials as `at`'s.
/// A source bucket that is one of the backend's own API paths is refused here too.
pub(in crate::request) fn source_route<'r>(
    at: At<'r>,
    source_target: &Target,
) -> Result<Route<'r>, HcpError> {
    let mut source_route = route::route(at.route.tenant, Some(at.route.backend), source_target)?;
    source_route.credentials = at.route.credentials.clone();
    Ok(source_route)
}

/// `f` of [`bucket_key`], spelled in a buffer the thread keeps (no allocation).
fn with_bucket_key<R>(at: At<'_>, f: impl FnOnce(&str) -> R) -> R {
    thread_local! {
        static NAME: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    NAME.with_borrow_mut(|name| {
        name.clear();
        spell_bucket_key(at, name);
        f(name)
    })
}

/// A backend bucket's name in the gateway's caches: the backend and the bucket there.
pub(in crate::request) fn bucket_key(at: At<'_>) -> String {
    let mut name = String::new();
    spell_bucket_key(at, &mut name);
    name
}

/// [`bucket_key`], written into `into`.
fn spell_bucket_key(at: At<'_>, into: &mut String) {
    into.push_str(&at.route.backend.name);
    into.push('\n');
    into.push_str(at.route.backend_bucket.as_deref().unwrap_or_default());
}

fn bucket_of(target: &Target) -> Target {
    Target {
        raw_key: None,
        ..target.clone()
    }
}

/// Whether an answer is OBS's for a bucket that is not there (400 InvalidBucket, "The bucket
/// to be accessed does not exist" — where other backends answer 404 NoSuchBucket).
fn obs_no_bucket(at: At<'_>, status: u16, body: &[u8]) -> bool {
    at.route.backend.dialect == crate::hcp::mapping::Dialect::Obs
        && status == 400
        && crate::hcp::xml::leaf_text(body, "Code").as_deref() == Some("InvalidBucket")
}

/// What a refused `GET ?retention` or `?legal-hold` says of an object's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoLock {
    /// The object (or the version) is not there.
    Object,
    /// The object has no lock of this kind (none set, or its bucket keeps no Object Lock).
    OfThisKind,
}

/// A backend's refusal of a lock sub-resource (`sub`: `retention` or `legal-hold`) read by its
/// code, whatever its status (MinIO answers NoSuchObjectLockConfiguration with 400): `None`
/// for anything else — a lock that cannot be read is not taken for none.
fn no_lock_answer(body: &[u8], dialect: crate::hcp::mapping::Dialect, sub: &str) -> Option<NoLock> {
    let code = crate::hcp::xml::leaf_text(body, "Code");
    let message = crate::hcp::xml::leaf_text(body, "Message").unwrap_or_default();
    let lock_message = message
        .to_ascii_lowercase()
        .replace(' ', "")
        .contains("objectlock");
    match code.as_deref() {
        Some("NoSuchKey" | "NoSuchVersion" | "NoSuchBucket") => Some(NoLock::Object),
        // (OBS: "The bucket to be accessed does not exist", 400.)
        Some("InvalidBucket") if dialect == crate::hcp::mapping::Dialect::Obs => {
            Some(NoLock::Object)
        }
        Some("NoSuchObjectLockConfiguration" | "ObjectLockConfigurationNotFoundError") => {
            Some(NoLock::OfThisKind)
        }
        // S3: "Bucket is missing Object Lock Configuration".
        Some("InvalidRequest") if lock_message => Some(NoLock::OfThisKind),
        // (OBS keeps no legal holds.)
        _ if dialect == crate::hcp::mapping::Dialect::Obs && sub == "legal-hold" => {
            Some(NoLock::OfThisKind)
        }
        _ => None,
    }
}

/// HCP's answers for an object under retention or on hold, in a namespace that keeps retention
/// (where every bucket keeps versions at the backend, so the backend itself would store a new
/// version or a delete marker): a new version over it is 403, a delete of it 409 — a
/// privileged delete (`bypass`) passes retention, never a hold; so does a purge of any of its
/// versions (the backend keeps the lock of the version named as well).
/// What cannot be read cannot be judged: 503, and nothing written, deleted or changed.
fn unreadable_lock(answer: Option<&ResponseHeader>) -> HcpError {
    let status = answer.map(|h| h.status.as_u16());
    HcpError::new(HcpCode::ServiceUnavailable)
        .with_message("The object's retention could not be read; try again.")
        .with_cause(format!("HEAD for retention answered {status:?}"))
}

/// Whether a metadata change (a copy of an object onto itself under REPLACE) only adds custom
/// metadata to the object `head` describes, and changes nothing else of it: every property it
/// has (but the gateway's own) is asked again with its value; its content headers (as the
/// change sends them: the object's own where the request names none) and storage class are
/// the object's; no customer's key is named (a new one would lock every other reader out, and
/// an object encrypted with one is not read without it). HCP: a bucket is "set to allow only
/// the addition of custom metadata for objects under retention".
pub(in crate::request) fn adds_metadata_only(
    req: &pingora::http::RequestHeader,
    head: &ResponseHeader,
) -> bool {
    let keyed = req.headers.keys().any(|n| {
        let n = n.as_str();
        n.starts_with("x-amz-server-side-encryption-customer-")
            || n.starts_with("x-amz-copy-source-server-side-encryption-customer-")
    });
    let same = |name: &http::HeaderName| {
        let trimmed = |v: &http::HeaderValue| v.as_bytes().trim_ascii().to_vec();
        req.headers.get(name).map(trimmed) == head.headers.get(name).map(trimmed)
    };
    // (S3 names no class for STANDARD.)
    let class = |h: &http::HeaderMap| {
        let class = h
            .get("x-amz-storage-class")
            .map(|v| v.as_bytes().trim_ascii());
        class.filter(|c| *c != b"STANDARD").map(<[u8]>::to_vec)
    };
    let same_class = class(&req.headers) == class(&head.headers);
    let asked = crate::request::sign::metadata_properties(&req.headers);
    let kept = head
        .headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str();
            let property = name
                .strip_prefix("x-amz-meta-")
                .or_else(|| name.strip_prefix("x-obs-meta-"))?;
            (!property.starts_with("hcp-gateway-")).then_some((property, value))
        })
        .all(|(property, value)| {
            asked
                .iter()
                .any(|(p, v)| p == property && v.as_slice() == value.as_bytes().trim_ascii())
        });
    // (A HEAD that says some metadata could not be shown hides properties to be asked again.)
    let hidden = head.headers.contains_key("x-amz-missing-meta");
    let content = crate::request::sign::CONTENT_HEADERS.iter().all(same);
    !keyed && !hidden && same_class && content && kept
}

/// Whether a write's Object Lock headers keep the retention `head` shows: the same mode, a
/// retain-until date no earlier.
fn keeps_retention(req: &pingora::http::RequestHeader, head: &ResponseHeader) -> bool {
    let Some((mode, _, until)) = rewrite::object_lock_retention(head) else {
        return false;
    };
    let text = |name| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let asked_until = text("x-amz-object-lock-retain-until-date").and_then(|d| {
        time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339).ok()
    });
    text("x-amz-object-lock-mode").is_some_and(|m| m.eq_ignore_ascii_case(mode))
        && asked_until.is_some_and(|d| d.unix_timestamp() >= until)
}

/// Why an object's lock was not read by its sub-resources: the backend refused the request
/// (a 400 that says nothing of a lock: a version id it cannot read), or it failed (no answer,
/// any other status, an answer that does not parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::request) enum Unread {
    Refused,
    Failed,
}

/// HCP's retention rules that need the object's lock: no new version over an object under
/// retention or on hold (but a metadata change that only adds metadata and keeps the
/// retention, `edit`: the request, where it is one), no delete of one — "nor any version of
/// that object": a purge of an old version is judged on the object as it is now (its current
/// version), whose hold or retention the old version need not carry at the backend.
pub(in crate::request) async fn check_retained(
    probe: &dyn Probe,
    op: Operation,
    params: &Params,
    at: At<'_>,
    edit: Option<&pingora::http::RequestHeader>,
) -> Result<(), HcpError> {
    let writes = matches!(
        op,
        Operation::PutObject | Operation::CopyObject | Operation::CompleteMultipartUpload
    );
    let deletes = op == Operation::DeleteObject;
    let retention_off = at.route.tenant.retention.mode == crate::config::RetentionMode::Off;
    // Where the tenant keeps no HCP retention, S3's Object Lock is still HCP's: "You cannot
    // delete an object … if the object is under retention or on hold" — where S3 puts a delete
    // marker over it. (A version named is the backend's to refuse; a bucket seen without
    // Object Lock asks nothing more for a few seconds.)
    let plain_delete = deletes && params.get("versionId").is_none();
    if retention_off && !(plain_delete && probe.may_keep_locks(at).await) {
        return Ok(());
    }
    // HCP: "While an object is on hold, you cannot change its retention setting" — by S3's
    // `PUT ?retention` no more than by a copy onto itself, nor of an older version while the
    // object is held (as its deletes are judged on the object as it is now). (A version the
    // HEAD does not find is the backend's to answer.)
    if op == Operation::PutObjectRetention {
        let version = params.get("versionId");
        if version.is_some() {
            hold_of(probe.object_answer(at, None).await, false)?;
        }
        return hold_of(probe.object_answer(at, version).await, version.is_some());
    }
    if !(writes || deletes) {
        return Ok(());
    }
    // A complete's retention is set once the object exists: the bucket must keep it, or
    // nothing is completed.
    if op == Operation::CompleteMultipartUpload
        && params.effects.change.is_some()
        && !probe.bucket_locked(at).await
    {
        return Err(HcpError::new(HcpCode::InvalidArgument).with_message(
            "This bucket cannot keep retention: it was created without S3 Object Lock.",
        ));
    }
    // What cannot be read cannot be judged: then nothing is written or deleted.
    let head = match probe.object_answer(at, None).await {
        Some(h) if h.status == 200 && !rewrite::object_lock_unreadable(&h) => h,
        Some(h) if h.status == 404 => return Ok(()),
        other => return Err(unreadable_lock(other.as_ref())),
    };
    let (setting, held) = rewrite::object_lock_of(&head);
    let now = crate::hcp::retention::now();
    let retained = setting.in_force(now);
    let adds_only = || {
        edit.filter(|_| op == Operation::CopyObject && params.effects.metadata_edit)
            .is_some_and(|req| adds_metadata_only(req, &head) && keeps_retention(req, &head))
    };
    if writes && (held || (retained && !adds_only())) {
        // A complete of an upload that is gone is NoSuchUpload, whatever the key holds (HCP:
        // an upload "aborted or completed" is 404) — the object retained may be the one it
        // made, a retry's whose answer was lost.
        if let (Operation::CompleteMultipartUpload, Some(id)) = (op, params.get("uploadId")) {
            upload_listed(probe, at, id).await?;
        }
        return Err(HcpError::new(HcpCode::AccessDenied).with_message(
            "The object is under retention or on hold: no new version of it is stored.",
        ));
    }
    // (A folder has no retention of its own — its marker, empty, may carry the bucket's
    // default retention all the same —, and deleting it without a version leaves the marker's
    // version where the backend keeps it. Data stored at such a name, and a hold, stay kept.)
    let folder = at.route.tenant.folders
        && params.get("versionId").is_none()
        && at.target.key().is_some_and(|k| k.ends_with(b"/"))
        && head
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
    // (S3's bypass passes governance alone: HCP's privileged delete never passes a version S3
    // keeps in compliance mode — manual: "S3 Object Lock does not support privileged delete" —
    // and a backend would add a delete marker over it all the same.)
    let bypassed = params.effects.bypass_governance
        && !rewrite::object_lock_retention(&head)
            .is_some_and(|(mode, _, _)| mode.eq_ignore_ascii_case("COMPLIANCE"));
    if deletes && (held || (retained && !bypassed && !folder)) {
        return Err(
            HcpError::new(HcpCode::OperationAborted).with_message(if held {
                "The object is on hold."
            } else {
                "The object is under retention."
            }),
        );
    }
    Ok(())
}

/// A `PUT ?retention`'s refusal where the object (or version) `answer` describes is on hold.
fn hold_of(answer: Option<ResponseHeader>, versioned: bool) -> Result<(), HcpError> {
    match answer {
        Some(h) if h.status == 200 && rewrite::object_lock_unreadable(&h) => {
            Err(unreadable_lock(Some(&h)))
        }
        Some(h) if h.status == 200 && rewrite::object_lock_of(&h).1 => {
            Err(HcpError::new(HcpCode::AccessDenied)
                .with_message("The object is on hold: its retention does not change."))
        }
        // (The backend's own refusals of the request — a version that is none (404), a delete
        // marker (405) — are its to answer; any other answer says nothing of the hold: 503.)
        Some(h) if matches!(h.status.as_u16(), 200 | 404 | 405) => Ok(()),
        // (A version id the backend cannot read: its 400 to answer.)
        Some(h) if h.status == 400 && versioned => Ok(()),
        other => Err(unreadable_lock(other.as_ref())),
    }
}

/// HCP answers a CreateBucket of a bucket the tenant has with 200 `BucketAlreadyOwnedByYou`
/// (an error document; seed 001). Where the backend would answer a plain 200 instead — AWS in
/// us-east-1 (also resetting the bucket's ACL), Ceph RGW, the embedded store — the gateway asks
/// first (a HEAD) and answers HCP's, without re-creating it; a bucket of that name it may not
/// see is 409 `BucketAlreadyExists`.
pub(in crate::request) async fn check_recreate(
    probe: &dyn Probe,
    at: At<'_>,
) -> Result<(), HcpError> {
    use crate::hcp::mapping::Dialect;
    let backend = at.route.backend;
    // (MinIO and OBS answer 409 BucketAlreadyOwnedByYou themselves, which maps to HCP's.)
    let plain_200 = match backend.dialect {
        Dialect::Aws => backend.region == "us-east-1",
        Dialect::Ceph | Dialect::Local => true,
        Dialect::Minio | Dialect::Obs => false,
    };
    if !plain_200 {
        return Ok(());
    }
    match probe.bucket_status(at).await {
        Some(200) => {
            let bucket = at.target.bucket.as_deref().unwrap_or_default();
            Err(HcpError::new(HcpCode::BucketAlreadyOwnedByYou).with_bucket(bucket))
        }
        Some(403) => Err(HcpError::new(HcpCode::BucketAlreadyExists)),
        // (Sent on a HEAD that said nothing, the create could answer 200 over a bucket that
        // is there — and AWS would reset its ACL: the HEAD's failure is the answer, as the
        // backend's own to a bodiless request.)
        Some(status) if status >= 500 || status == 429 => Err(rewrite::bodiless_failure(status)
            .with_cause(format!("HEAD of the bucket answered {status}"))),
        None => Err(HcpError::new(HcpCode::ServiceUnavailable)
            .with_message("Whether the bucket exists could not be learned; try again.")
            .with_cause("HEAD of the bucket: no answer")),
        // (Absent, or a bucket in another region — 301, 307, or 400 for a signature of the
        // wrong region — which the backend refuses itself: 409.)
        Some(_) => Ok(()),
    }
}

/// A write's `If-None-Match: *` that fails: 412, a complete's 200 with the Error document, as
/// the backend's is answered (seed 001).
fn create_only_failed(op: Operation) -> HcpError {
    let failed = HcpError::new(HcpCode::PreconditionFailed);
    match op {
        Operation::CompleteMultipartUpload => failed.with_status(200),
        _ => failed,
    }
}

/// A write judged by retention (`retained`: `check_retained`'s finding) and by the no-overwrite
/// rule, which came first (`check_overwrite`): HCP's 409 for a name taken where versioning is
/// not enabled comes before its 403 for a retained object's new version ("while versioning is
/// enabled"); where the rule left the name to the backend's condition (`guarded`), a retained
/// object — which retention's HEAD found — is a name taken.
pub(in crate::request) fn retained_or_taken(
    retained: Result<(), HcpError>,
    guarded: bool,
) -> Result<(), HcpError> {
    match retained {
        Err(e) if e.status == 403 && guarded => Err(crate::request::respond::settle::name_exists()),
        other => other,
    }
}

/// A write's ETag conditions, judged here: a complete's `If-Match` (HCP: "If the specified
/// value doesn't match the Etag or the specified object doesn't exist, HCP returns an error
/// response body and does not complete the multipart upload"; a backend without conditional
/// writes would complete it), a PUT's or copy's where the backend has no conditional writes
/// (S3's If-Match on a write; Ceph RGW reads it its own way), and an `If-None-Match` naming
/// ETags on any write (AWS answers it 501, the others judge it each their own way): on the
/// object's HEAD, 412 where one fails — a complete's 200 with the Error document. An object
/// whose HEAD names no ETag (one encrypted with a customer's key) is judged on the ETag a
/// listing names.
async fn check_write_if_match(
    probe: &dyn Probe,
    req: &pingora::http::RequestHeader,
    (op, at, version): (Operation, At<'_>, Option<&str>),
) -> Result<(), HcpError> {
    let lossy = |v: &http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    // (A PUT's or copy's If-Match of one ETag a backend with conditional writes judges
    // itself: `sign` sends it only so.)
    let judged_here = |v: &&http::HeaderValue| {
        matches!(
            op,
            Operation::CompleteMultipartUpload | Operation::DeleteObject
        ) || !at.route.backend.conditional_writes
            || !v.to_str().is_ok_and(crate::etag::single)
    };
    let if_match = req
        .headers
        .get(http::header::IF_MATCH)
        .filter(judged_here)
        .map(lossy);
    let if_none = req
        .headers
        .get(http::header::IF_NONE_MATCH)
        .filter(|v| v.as_bytes().trim_ascii() != b"*")
        .map(lossy);
    if if_match.is_none() && if_none.is_none() {
        return Ok(());
    }
    let unknown = |what: &str| name_unknown(format!("{what} for a write's ETag condition"));
    // The object's ETag (`None`: no object).
    let etag = match probe.object_answer(at, version).await {
        Some(h) if h.status == 200 => match h.headers.get(http::header::ETAG) {
            Some(etag) => Some(lossy(etag)),
            // (Its lock read by its sub-resources: the ETag by a listing — of the current
            // version's; an old one's is not known.)
            None if version.is_some() => return Err(unknown("an old version's HEAD")),
            None => probe
                .listed_etag(at)
                .await
                .ok_or_else(|| unknown("a listing"))?,
        },
        Some(h) if h.status == 404 => None,
        other => {
            let status = other.map(|h| h.status.as_u16());
            return Err(unknown(&format!("a HEAD answered {status:?}")));
        }
    };
    let listed = |asked: &str| {
        etag.as_deref()
            .is_some_and(|e| crate::etag::listed(asked, e))
    };
    let holds = if_match.as_deref().is_none_or(listed)
        && !if_none
            .as_deref()
            .is_some_and(|asked| asked.split(',').any(|t| t.trim() != "*" && listed(t)));
    match holds {
        true => Ok(()),
        false => Err(create_only_failed(op)),
    }
}

/// A DELETE's `If-Match` (S3's conditional delete; HCP's DELETE has none): judged here on the
/// object's — or the named version's — HEAD, 412 where it fails, whatever the backend (the
/// embedded store has no conditional deletes, MinIO ignores one). Sent on as well only where
/// the backend judges it atomically (`sign`); elsewhere a delete racing a write between the
/// HEAD and the DELETE is not caught.
pub(in crate::request) async fn check_delete_if_match(
    probe: &dyn Probe,
    req: &pingora::http::RequestHeader,
    (op, at, version): (Operation, At<'_>, Option<&str>),
) -> Result<(), HcpError> {
    if op != Operation::DeleteObject || !req.headers.contains_key(http::header::IF_MATCH) {
        return Ok(());
    }
    check_write_if_match(probe, req, (op, at, version)).await
}

/// Writes that must not replace an existing object: HCP's rule 41 on tenants with
/// `overwrite = "refuse-unversioned"` (409 when the name exists as an object or a folder and
/// the bucket is not versioned), and `If-None-Match: *` for backends without conditional
/// writes (412). A backend with conditional writes refuses an existing object atomically;
/// otherwise a HEAD checks first, and a writer racing between check and write is not caught.
pub(in crate::request) async fn check_overwrite(
    probe: &dyn Probe,
    req: &pingora::http::RequestHeader,
    (op, metadata_edit, upload_id): (Operation, bool, Option<&str>),
    at: At<'_>,
) -> Result<Overwrite, HcpError> {
    if !matches!(
        op,
        Operation::PutObject | Operation::CopyObject | Operation::CompleteMultipartUpload
    ) {
        return Ok(Overwrite::Unguarded);
    }
    let backend = at.route.backend;
    // A write's ETag conditions (of the object it replaces): a complete's If-Match always (a
    // backend without conditional writes would complete it), a PUT's or copy's where the
    // backend has none; an If-None-Match naming ETags always — `check_write_if_match`.
    check_write_if_match(probe, req, (op, at, None)).await?;
    let client_create_only = req
        .headers
        .get(http::header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes().trim_ascii() == b"*");
    let create_only = client_create_only && !backend.conditional_writes;
    let refuse = at.route.tenant.overwrite == crate::config::Overwrite::RefuseUnversioned
        && !probe.versioning_enabled(at).await;
    if !create_only && !refuse {
        return Ok(Overwrite::Unguarded);
    }
    // A complete of an upload that is gone is NoSuchUpload, not the name's 409: the key a
    // complete made may hold its object (a retry, its answer lost; HCP: an upload "aborted or
    // completed").
    if let (Operation::CompleteMultipartUpload, Some(id)) = (op, upload_id) {
        upload_listed(probe, at, id).await?;
    }
    // With conditional writes the backend checks the object itself; a client's own
    // If-None-Match then stays the client's (412), and a client's If-Match cannot travel with
    // the gateway's If-None-Match (no backend takes both), so then the gateway asks first.
    let client_if_match = req.headers.contains_key(http::header::IF_MATCH);
    // A copy source's own conditions fail with 412 too, which the backend's answer could not
    // tell from the gateway's If-None-Match: then the gateway asks first as well.
    let client_source_conditions = req
        .headers
        .keys()
        .any(|n| n.as_str().starts_with("x-amz-copy-source-if-"));
    let ask_backend = refuse
        && !metadata_edit
        && backend.conditional_writes
        && !client_create_only
        && !client_if_match
        && !client_source_conditions;
    // What the backend did not say cannot be judged: 503, nothing written (a failed HEAD
    // taken for an absent name would let the write replace what the rule keeps).
    let unknown = |what: &str, status: Option<u16>| {
        name_unknown(format!(
            "{what} for the no-overwrite rule answered {status:?}"
        ))
    };
    let head = match ask_backend {
        true => None,
        false => match probe.object_answer(at, None).await {
            // (An object a HEAD without its customer's key cannot read exists all the same:
            // its sub-resources say so, `object_answer`.)
            Some(h) if matches!(h.status.as_u16(), 200 | 404) => Some(h),
            // A HEAD refused for want of the object's customer key, its lock unread too (or a
            // name the backend will refuse): whether it is there, by a listing.
            Some(h) if h.status == 400 => {
                let listed = probe.key_listed(at).await;
                let status = match listed.ok_or_else(|| unknown("a listing of the key", None))? {
                    true => 200,
                    false => 404,
                };
                Some(ResponseHeader::build(status, Some(0)).expect("status"))
            }
            other => return Err(unknown("HEAD", other.map(|h| h.status.as_u16()))),
        },
    };
    let exists = head.as_ref().is_some_and(|h| h.status == 200);
    // The client's own precondition comes first, as HTTP evaluates preconditions.
    if client_create_only && exists {
        return Err(create_only_failed(op));
    }
    // (A metadata change writes the object's own content over it.)
    if !refuse || (metadata_edit && exists && replaces_itself(probe, head.as_ref(), at).await) {
        return Ok(Overwrite::Unguarded);
    }
    // (Where folders are kept, `check_folder_names` has asked.)
    let folder_exists = !exists && !at.route.tenant.folders && {
        let mut folder = at.target.key().unwrap_or_default().into_owned();
        folder.push(b'/');
        probe
            .any_key_under(at, &folder)
            .await
            .ok_or_else(|| unknown("a listing", None))?
    };
    if exists || folder_exists {
        return Err(name_exists());
    }
    Ok(if ask_backend {
        Overwrite::AskBackend
    } else {
        Overwrite::Unguarded
    })
}

/// Whether a request may replace its key's `null` version at the backend, as S3 does where
/// versioning is suspended: a write, or a delete naming no version, by a caller without the
/// purge permission ([`check_null_version`] judges whether it would replace an old one).
pub(in crate::request) fn may_replace_null(
    op: Operation,
    named_version: bool,
    may_purge: bool,
) -> bool {
    use Operation::*;
    let replaces = matches!(op, PutObject | CopyObject | CompleteMultipartUpload)
        || op == DeleteObject && !named_version;
    replaces && !may_purge
}

/// Where the backend's versioning is suspended, S3 replaces a key's `null` version with any
/// write, or delete naming no version, of the key — wherever that version stands: one stored
/// before versioning was first enabled, kept behind newer ones, would be gone for good. HCP:
/// "Disabling versioning does not cause old versions of objects to be deleted", and deleting
/// a version for good is a purge. So where the key's `null` version is not its newest, such a
/// request needs the purge permission (403, nothing sent); where it is, it is the object
/// itself (an overwrite, which rule 41 judges, or a delete). A backend that does not say which
/// is 503.
///
/// Asked of the requests [`may_replace_null`] names, where the backend replaces the key's
/// `null` version (`Probe::replaces_null_version`).
pub(in crate::request) async fn check_null_version(
    probe: &dyn Probe,
    at: At<'_>,
) -> Result<(), HcpError> {
    let unknown = |what: &str, status: Option<u16>| {
        HcpError::new(HcpCode::ServiceUnavailable).with_cause(format!(
            "{what} for the key's null version answered {status:?}"
        ))
    };
    // First whether the key has a `null` version of content at all. (A 400: a backend that
    // takes no such id names no version by it.)
    match probe
        .object_answer(at, Some("null"))
        .await
        .map(|h| h.status.as_u16())
    {
        Some(200) => {}
        // None, or a delete marker: nothing of content goes.
        Some(400 | 404 | 405) => return Ok(()),
        other => return Err(unknown("HEAD", other)),
    }
    // Then whether it is the key's newest — the object itself —, as a version listing names
    // it (a HEAD of the object may name no version: one encrypted with a customer's key is
    // read by its sub-resources).
    match probe.newest_version(at).await {
        Some(Some(newest)) if newest == "null" => Ok(()),
        Some(Some(_)) => Err(crate::request::authorize::denied().with_message(
            "This replaces the object's null version, an old version kept while versioning is \
             suspended: that needs the purge permission.",
        )),
        _ => Err(unknown("a version listing", None)),
    }
}

/// An upload's listing's answer that it is gone: NoSuchUpload, or NoSuchBucket naming the
/// bucket (HCP's error names it).
fn gone(code: HcpCode, at: At<'_>) -> HcpError {
    match code {
        HcpCode::NoSuchBucket => crate::request::folders::no_such_bucket(at.target),
        _ => HcpError::new(code),
    }
}

/// NoSuchUpload where the backend does not know the upload (NoSuchBucket where not the
/// bucket); one part listed is enough to know it is there (`true`). Unanswered (`false`): the
/// request's own answer decides.
pub(in crate::request) async fn upload_listed(
    probe: &dyn Probe,
    at: At<'_>,
    upload_id: &str,
) -> Result<bool, HcpError> {
    match probe.parts_page(at, upload_id, (None, 1)).await {
        PartsPage::Gone(code) => Err(gone(code, at)),
        PartsPage::Listed(_) => Ok(true),
        PartsPage::Unknown => Ok(false),
    }
}

/// A name whose taking the backend did not say of (a HEAD or listing without an answer): 503,
/// nothing written — taken for absent, it would let a write replace what the rules keep.
pub(in crate::request) fn name_unknown(cause: String) -> HcpError {
    HcpError::new(HcpCode::ServiceUnavailable)
        .with_message("Whether the name is taken could not be learned; try again.")
        .with_cause(cause)
}

/// Whether a metadata change writes the object's own content over it (`head`: the object's)
/// where that replaces the object itself: not where versioning is suspended and the key's
/// newest version is not its `null` one, which the write would replace (another content,
/// gone). Where the gateway keeps HCP's versioning the backend keeps every version: the
/// change's new version leaves the old one.
async fn replaces_itself(probe: &dyn Probe, head: Option<&ResponseHeader>, at: At<'_>) -> bool {
    // (S3's header or OBS's: through OBS's own signing the version is named in its own.)
    let newest_is_null = head
        .and_then(crate::request::acls::version_header)
        .is_none_or(|v| v.as_bytes() == b"null");
    newest_is_null
        || crate::request::versioning::kept_by_gateway(at.route.tenant)
            && probe.bucket_locked(at).await
}

/// A copy's source conditions (`x-amz-copy-source-if-*`), judged on its source's HEAD: every
/// one that fails is 412 (HCP's copy performs only "if the source meets all the conditions");
/// a source the backend refuses (4xx) is the backend's to answer, one it says nothing of (no
/// answer, 5xx) is 503 — sent on, the backend would judge the conditions by HTTP's precedence
/// (a matching If-Match passes whatever If-Unmodified-Since says).
pub(in crate::request) async fn check_copy_conditions(
    req: &pingora::http::RequestHeader,
    source_head: impl std::future::Future<Output = Result<Option<Arc<ResponseHeader>>, HcpError>>,
) -> Result<Option<JudgedSource>, HcpError> {
    let conditional = req
        .headers
        .keys()
        .any(|n| n.as_str().starts_with("x-amz-copy-source-if-"));
    if !conditional {
        return Ok(None);
    }
    let head = match source_head.await? {
        Some(h) if h.status == 200 => h,
        Some(h) if !h.status.is_server_error() => return Ok(None),
        other => return Err(unjudged_source(other.as_deref())),
    };
    match rewrite::precondition_with(req, "x-amz-copy-source-", &head) {
        rewrite::Precondition::Holds => Ok(Some(JudgedSource::of(&head, None))),
        _ => Err(HcpError::new(HcpCode::PreconditionFailed)),
    }
}

/// A copy's source conditions that cannot be judged: 503.
fn unjudged_source(head: Option<&ResponseHeader>) -> HcpError {
    let status = head.map(|h| h.status.as_u16());
    HcpError::new(HcpCode::ServiceUnavailable)
        .with_message("The copy source could not be read to judge its conditions; try again.")
        .with_cause(format!("HEAD of the copy source answered {status:?}"))
}

/// A copy of an object onto itself (its current version: no source version id) with
/// `x-amz-metadata-directive: REPLACE`: HCP's way to change an unversioned object's metadata
/// ("the custom metadata is replaced on the current version of the object"), which rule 41
/// lets through (its 409 is for a copy onto an existing name "that does not include …
/// REPLACE"). Its content stays; a REPLACE copy from another object or version would change
/// the content, which HCP's objects never have changed. `current`: the source's version id is
/// ignored (its bucket keeps no versions: HCP copies the current version then).
pub(in crate::request) fn replaces_its_own_metadata(
    req: &pingora::http::RequestHeader,
    (op, current): (Operation, bool),
    target: &Target,
) -> bool {
    op == Operation::CopyObject
        && req
            .headers
            .get("x-amz-metadata-directive")
            .and_then(|v| v.to_str().ok())
            .and_then(super::metadata_directive)
            == Some("REPLACE")
        && req
            .headers
            .get("x-amz-copy-source")
            .and_then(|v| crate::request::sign::CopySource::parse(v.as_bytes()))
            .is_some_and(|source| source.is(target) && (current || source.version_id.is_none()))
}

/// HCP's complete rules (docs/validation.md 29, 30, 32): a well-formed, ascending part list,
/// and every part but the last at least HCP's and the backend's minimum size. `changes`: the
/// complete asks for retention or holds (`Effects::change`).
pub(in crate::request) async fn check_complete(
    probe: &dyn Probe,
    hcp_minimum: u64,
    (body, upload_id, changes): (&[u8], &str, bool),
    at: At<'_>,
) -> Result<Vec<complete::ListedPart>, HcpError> {
    let parts = complete::parse(body)?;
    complete::check_order(&parts)?;
    let backend_minimum = at.route.backend.min_part_bytes;
    // (One asking for retention or holds is listed all the same: the upload must be there.)
    if hcp_minimum == 0 && backend_minimum == 0 && !changes {
        return Ok(parts);
    }
    // (A listing that fails leaves the sizes to the backend, which judges its own minimum,
    // never HCP's where that is larger: then 503.)
    // An upload that is gone is HCP's NoSuchUpload here (RGW completes an aborted one with 500
    // "already in progress") — but for the complete of one completed, whose object the key
    // still holds: a client's retry of it, its answer lost, which the backend answers as the
    // first (README: a difference kept). Not one asking for retention or holds: the backend
    // may answer the first's version — an older one, where the key was written since — which
    // the change would take for the new object it judges "from none".
    let sizes = match part_sizes(probe, at, upload_id).await {
        Err(gone) if gone.code == HcpCode::NoSuchUpload => {
            return match !changes && made_by(&parts, probe.listed_etag(at).await) {
                true => Ok(parts),
                false => Err(gone),
            };
        }
        sizes => sizes?,
    };
    let Some(sizes) = sizes else {
        if hcp_minimum > backend_minimum {
            return Err(HcpError::new(HcpCode::ServiceUnavailable)
                .with_message("The upload's parts could not be listed; try again.")
                .with_cause("ListParts for the complete's part sizes failed"));
        }
        return Ok(parts);
    };
    complete::check_sizes(
        &parts,
        |n| sizes.get(&n).copied(),
        hcp_minimum,
        backend_minimum,
    )?;
    Ok(parts)
}

/// Whether the key's listed ETag is the one a complete of `parts` makes: the MD5 of their
/// MD5s, and their count (S3's multipart ETag); never where a part's ETag is no MD5.
fn made_by(parts: &[complete::ListedPart], listed: Option<Option<String>>) -> bool {
    use md5::Digest as _;
    let Some(Some(listed)) = listed else {
        return false;
    };
    let mut md5 = md5::Md5::new();
    for part in parts {
        let hex = part.etag.trim_matches('"');
        match hex::decode(hex) {
            Ok(digest) if digest.len() == 16 => md5.update(digest),
            _ => return false,
        }
    }
    let made = format!("{}-{}", hex::encode(md5.finalize()), parts.len());
    listed.trim_matches('"').eq_ignore_ascii_case(&made)
}

/// The sizes of an upload's parts, page by page (at most 20 pages of 1,000); `None` where a
/// page could not be read, NoSuchUpload (or NoSuchBucket) where the upload is gone.
async fn part_sizes(
    probe: &dyn Probe,
    at: At<'_>,
    upload_id: &str,
) -> Result<Option<HashMap<u32, u64>>, HcpError> {
    let mut sizes = HashMap::new();
    let mut marker: Option<String> = None;
    for _ in 0..20 {
        let (page, next) = match probe
            .parts_page(at, upload_id, (marker.as_deref(), 1000))
            .await
        {
            PartsPage::Listed(listed) => listed,
            PartsPage::Gone(code) => return Err(gone(code, at)),
            PartsPage::Unknown => return Ok(None),
        };
        sizes.extend(page);
        match next {
            Some(n) => marker = Some(n),
            None => break,
        }
    }
    Ok(Some(sizes))
}

/// A copy's source as the gateway judged it on its HEAD, put on the copy it sends: a part
/// copy's range that ends past its source, as HCP copies it ("a valid range in which the start
/// position is less than the size of the source object data": the part is uploaded, 200) — to
/// the source's last byte (S3 refuses a range past the end); and the source pinned to the ETag
/// read (`x-amz-copy-source-if-match`) where the range was clamped or the client's conditions
/// judged — those conditions (an ETag list, `*`, dates, which backends read each their own
/// way) held for that source, and are not sent on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::request) struct JudgedSource {
    /// `bytes=first-last`, `last` the source's last byte, where the range asked ends past it.
    pub range: Option<String>,
    /// The source's ETag, where its HEAD named one.
    pub etag: Option<String>,
}

impl JudgedSource {
    /// The source judged on `head`: its ETag, and `range` where clamped.
    fn of(head: &ResponseHeader, range: Option<String>) -> JudgedSource {
        let etag = head.headers.get(http::header::ETAG);
        JudgedSource {
            range,
            etag: etag.and_then(|v| v.to_str().ok()).map(str::to_string),
        }
    }

    /// Puts the range and the pin on the client's request, which is signed from it.
    pub(in crate::request) fn apply(&self, req: &mut pingora::http::RequestHeader) {
        if let Some(range) = &self.range {
            req.insert_header("x-amz-copy-source-range", range.as_str())
                .expect("digits");
        }
        let Some(etag) = &self.etag else {
            return;
        };
        if let Ok(value) = http::HeaderValue::from_str(etag) {
            for condition in [
                "x-amz-copy-source-if-none-match",
                "x-amz-copy-source-if-modified-since",
                "x-amz-copy-source-if-unmodified-since",
            ] {
                req.remove_header(condition);
            }
            req.insert_header("x-amz-copy-source-if-match", value)
                .expect("valid header");
        }
    }
}

/// Seed 000's UploadPartCopy rules that need the source's state (the upload's — that it
/// existed before the copy, so that its disappearance during the copy can be told apart, 409 —
/// is [`upload_listed`]'s): the range must start inside the source (one that ends past it is
/// copied to its end, [`JudgedSource`]), and the copy-source conditions must hold (412). The
/// source's HEAD comes from `source_head` (the gateway caches it briefly).
pub(in crate::request) async fn check_part_copy(
    req: &pingora::http::RequestHeader,
    source_head: impl std::future::Future<Output = Result<Option<Arc<ResponseHeader>>, HcpError>>,
    max_part: u64,
) -> Result<Option<JudgedSource>, HcpError> {
    let range = req
        .headers
        .get("x-amz-copy-source-range")
        .and_then(|v| v.to_str().ok())
        .and_then(validate::copy_range);
    let conditional = req
        .headers
        .keys()
        .any(|n| n.as_str().starts_with("x-amz-copy-source-if-"));
    // (The source's HEAD is read for every part copy — kept a few seconds for a series of
    // them —: a range's start is judged against its size, and a copy without a range is the
    // whole source, which may be larger than a part may be.)
    // A missing or unreadable source is the backend's to answer — but not where conditions
    // are to be judged on an answer that says nothing (as for a copy).
    let head = match source_head.await? {
        Some(h) if h.status == 200 => h,
        Some(h) if conditional && h.status.is_server_error() => {
            return Err(unjudged_source(Some(&h)))
        }
        None if conditional => return Err(unjudged_source(None)),
        _ => return Ok(None),
    };
    if conditional
        && rewrite::precondition_with(req, "x-amz-copy-source-", &head)
            != rewrite::Precondition::Holds
    {
        return Err(HcpError::new(HcpCode::PreconditionFailed));
    }
    let size = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let judged = conditional.then(|| JudgedSource::of(&head, None));
    let Some(size) = size else {
        return Ok(judged);
    };
    // Rule 26: a part is at most `max_part_bytes` (HCP: "up to and including five
    // gigabytes"), copied or sent.
    let too_large = || {
        Err(HcpError::new(HcpCode::EntityTooLarge)
            .with_message("The part copied would be larger than a part may be."))
    };
    let Some((first, last)) = range else {
        // (The whole source: judged by its size, so pinned to the source whose size was
        // read — a larger one written meanwhile is not copied.)
        return match size > max_part {
            true => too_large(),
            false => Ok(Some(JudgedSource::of(&head, None))),
        };
    };
    if first >= size {
        return Err(HcpError::new(HcpCode::InvalidArgument)
            .with_message("The copy range starts at or beyond the end of the source object."));
    }
    if last.min(size - 1) - first >= max_part {
        return too_large();
    }
    if last < size {
        return Ok(judged);
    }
    let clamped = format!("bytes={first}-{}", size - 1);
    Ok(Some(JudgedSource::of(&head, Some(clamped))))
}

impl Gateway {
    /// A HEAD of a copy's `source` (the version it names, if any), with the source's customer's
    /// key from `req` where it has one; `None` where the backend did not answer.
    pub(in crate::request) async fn head_of_source(
        &self,
        req: &pingora::http::RequestHeader,
        at: At<'_>,
        source: &sign::CopySource,
    ) -> Result<Option<ResponseHeader>, HcpError> {
        let source_target = source_target(at, source);
        let source_route = source_route(at, &source_target)?;
        let mut params = Params::default();
        if let Some(v) = &source.version_id {
            params.set("versionId", v);
        }
        let key = crate::request::object_owners::source_key(req);
        let head = self.backend_call_with(
            Operation::HeadObject,
            params,
            (&source_target, &source_route),
            &key,
        );
        Ok(head.await.map(|(h, _)| h))
    }

    /// The HEAD of a copy's source (its current version where `current`), with the source's
    /// customer's key where it has one, whatever its status (`None`: no source named, or no
    /// answer).
    /// `kept`: from a cache of a few seconds (a series of part copies reads it once), keyed by
    /// the backend's bucket name, as tenants may share client names — or kept there. Never a
    /// kept answer where conditions are judged on it, nor for a source read with a customer's
    /// key (another client without the key would learn its ETag and size from it). Where the
    /// answer was a kept one, `kept` is set.
    pub(in crate::request) async fn copy_source_answer(
        &self,
        req: &pingora::http::RequestHeader,
        at: At<'_>,
        current: bool,
        kept: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<Option<Arc<ResponseHeader>>, HcpError> {
        let Some(mut source) = req
            .headers
            .get("x-amz-copy-source")
            .and_then(|v| sign::CopySource::parse(v.as_bytes()))
        else {
            return Ok(None);
        };
        if current {
            source.version_id = None;
        }
        let source_target = source_target(at, &source);
        let key = crate::request::object_owners::source_key(req);
        let encoded = source_target.raw_key.as_deref().unwrap_or_default();
        let version = source.version_id.as_deref();
        let cache_key = (kept.is_some() && key.is_empty())
            .then(|| source_head_key(at, &source.bucket, encoded, version));
        if let Some(cache_key) = &cache_key {
            let cached = self.source_heads.get(cache_key);
            self.metrics
                .cache_lookup("copy_source_head", cached.is_some());
            if cached.is_some() {
                if let Some(kept) = kept {
                    kept.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                return Ok(cached);
            }
        }
        let head = self.head_of_source(req, at, &source).await?.map(Arc::new);
        if let (Some(cache_key), Some(head)) =
            (cache_key, head.as_ref().filter(|h| h.status == 200))
        {
            self.source_heads.insert(cache_key, head.clone());
            self.source_heads_kept
                .store(epoch_seconds(), std::sync::atomic::Ordering::Release);
        }
        Ok(head)
    }

    /// A write or delete of `at`'s object carried out: a copy source's HEAD kept for it (its
    /// current version's) is no longer what the object is — a part copy judges its range on
    /// the object as it is now. (One written through another instance is seen within the
    /// few seconds the HEAD is kept.)
    /// (Nothing is asked, nor allocated, unless a HEAD was kept within its lifetime: a clock
    /// read at most.)
    pub(in crate::request) fn forget_source_head(&self, at: At<'_>) {
        let kept = self
            .source_heads_kept
            .load(std::sync::atomic::Ordering::Acquire);
        if !may_still_be_kept(kept, epoch_seconds) {
            return;
        }
        let (Some(bucket), Some(key)) = (at.target.bucket.as_deref(), at.target.key()) else {
            return;
        };
        // (Encoded as `source_target` encodes a source's key.)
        let mut encoded = String::with_capacity(key.len() * 3);
        sigv4::uri_encode(&key, true, &mut encoded);
        let cache_key = source_head_key(at, bucket, encoded.as_bytes(), None);
        self.source_heads.invalidate(&cache_key);
    }

    /// An object's lock as `GET ?retention` and `GET ?legal-hold` answer it (each 404 where the
    /// object has none), in the form of a HEAD's answer: a 404 where the object or version is
    /// not there (S3's NoSuchKey, NoSuchVersion); [`Unread`] where either fails otherwise.
    pub(in crate::request) async fn lock_by_subresources(
        &self,
        at: At<'_>,
        version: Option<&str>,
    ) -> Result<ResponseHeader, Unread> {
        let mut lock = ResponseHeader::build(200, Some(2)).expect("status");
        let leaves: [&[(&str, &str)]; 2] = [
            &[
                ("RetainUntilDate", "x-amz-object-lock-retain-until-date"),
                ("Mode", "x-amz-object-lock-mode"),
            ],
            &[("Status", "x-amz-object-lock-legal-hold")],
        ];
        let subresources = [
            (Operation::GetObjectRetention, "retention"),
            (Operation::GetObjectLegalHold, "legal-hold"),
        ];
        for ((op, sub), leaves) in subresources.into_iter().zip(leaves) {
            let mut params = Params::default().with(sub, String::new());
            if let Some(v) = version {
                params.set("versionId", v);
            }
            let call = self.backend_call(op, params, at.target, at.route);
            let (answer, body) = call.await.ok_or(Unread::Failed)?;
            match answer.status.as_u16() {
                200 => {
                    for (leaf, header) in leaves {
                        // (A retention's date is its answer; a mode left out is none.)
                        match crate::hcp::xml::leaf_text(&body, leaf) {
                            Some(value) => lock
                                .insert_header(*header, value.trim())
                                .map_err(|_| Unread::Failed)?,
                            None if *leaf == "Mode" => {}
                            None => return Err(Unread::Failed),
                        }
                    }
                }
                400..500 => match no_lock_answer(&body, at.route.backend.dialect, sub) {
                    Some(NoLock::Object) => {
                        return Ok(ResponseHeader::build(404, Some(0)).expect("status"))
                    }
                    Some(NoLock::OfThisKind) => {}
                    // (Only a 400 refuses the request itself — a version id the backend cannot
                    // read; a 403, 408 or 429 says nothing of the lock.)
                    None if answer.status == 400 => return Err(Unread::Refused),
                    None => return Err(Unread::Failed),
                },
                _ => return Err(Unread::Failed),
            }
        }
        Ok(lock)
    }

    /// A one-entry listing under the target's key — of keys, or of `versions` (the newest
    /// first) —, where it lists the key itself (its first entry: a key sorts before every key
    /// it begins); `Some(None)` where the key is not there (no bucket, no key); `None` where
    /// the backend did not say.
    async fn listing_of_key(&self, at: At<'_>, versions: bool) -> Option<Option<Vec<u8>>> {
        let key = at.target.key().unwrap_or_default().into_owned();
        let (head, body) = match versions {
            false => self.first_key_under(at, &key).await?,
            true => {
                let params = Params::default()
                    .with("versions", "")
                    .with("max-keys", "1")
                    .with("prefix", String::from_utf8_lossy(&key));
                let bucket = bucket_of(at.target);
                let op = Operation::ListObjectVersions;
                self.backend_call(op, params, &bucket, at.route).await?
            }
        };
        let first = crate::hcp::xml::leaf_text(&body, "Key");
        match head.status.as_u16() {
            200 if first.is_some_and(|k| k.as_bytes() == key.as_slice()) => Some(Some(body)),
            200 | 404 => Some(None),
            status if obs_no_bucket(at, status, &body) => Some(None),
            _ => None,
        }
    }

    /// A listing of the bucket's first key under `prefix` (status and document).
    async fn first_key_under(
        &self,
        at: At<'_>,
        prefix: &[u8],
    ) -> Option<(ResponseHeader, Vec<u8>)> {
        let params = Params::default()
            .with("list-type", "2")
            .with("max-keys", "1")
            .with("prefix", String::from_utf8_lossy(prefix));
        let bucket = bucket_of(at.target);
        self.backend_call(Operation::ListObjectsV2, params, &bucket, at.route)
            .await
    }

    /// A small request of the gateway's own to the backend (listing parts, the size of a copy
    /// source, removing a version it could not protect): status and whole body, or `None` if
    /// the backend could not be reached.
    pub(in crate::request) async fn backend_call(
        &self,
        op: Operation,
        params: Params,
        target: &Target,
        route: &Route<'_>,
    ) -> Option<(ResponseHeader, Vec<u8>)> {
        let headers = http::HeaderMap::new();
        self.backend_call_with(op, params, (target, route), &headers)
            .await
    }

    /// [`Gateway::backend_call`] with request headers of the gateway's choosing (only those
    /// `op` defines are sent: `sign::defines_header`).
    pub(in crate::request) async fn backend_call_with(
        &self,
        op: Operation,
        params: Params,
        (target, route): (&Target, &Route<'_>),
        headers: &http::HeaderMap,
    ) -> Option<(ResponseHeader, Vec<u8>)> {
        let method = match op {
            Operation::HeadBucket | Operation::HeadObject => http::Method::HEAD,
            Operation::DeleteObject | Operation::DeleteBucket => http::Method::DELETE,
            Operation::CorsPreflight => http::Method::OPTIONS,
            _ => http::Method::GET,
        };
        let req = sign::backend_request(
            sign::Outbound {
                op,
                method: &method,
                params: &params,
                target,
                headers,
            },
            route,
            sign::BodyPlan::NONE,
            SystemTime::now(),
            &self.signing_keys,
        );
        self.backend_exchange(req, None, route).await
    }

    /// Sends a signed request with a small body held in memory; status and whole answer.
    pub(in crate::request) async fn backend_exchange(
        &self,
        req: crate::backend::head::RequestHead,
        body: Option<&[u8]>,
        route: &Route<'_>,
    ) -> Option<(ResponseHeader, Vec<u8>)> {
        if req.is_malformed() {
            crate::request::forward::malformed_head();
            return None;
        }
        let head = req.method == http::Method::HEAD;
        let now = std::time::Instant::now();
        let mut up = self.forwarder.connect(route.backend, now).await.ok()?;
        route.backend.counters.connection(up.reused);
        route.backend.counters.request();
        up.session.write_request_header(&req).await.ok()?;
        if let Some(body) = body {
            up.session.write_body(body).await.ok()?;
        }
        up.session.finish_body().await.ok()?;
        up.session.read_response().await.ok()?;
        let header = up.session.resp_header()?.clone();
        let body = if head {
            Vec::new()
        } else {
            let limit = self.cfg.max_buffered_response_bytes;
            // (The gateway's own exchange, bounded, some after a change: counted, never
            // refused — a refusal would read as the backend's silence.)
            upstream::read_whole_body(&mut up.session, limit, &mut self.held.hold_counted())
                .await
                .ok()?
        };
        if up.session.is_body_done() {
            self.forwarder.release(up).await;
        }
        Some((header, body))
    }

    /// The backend account's canonical id: the owner its `GET /` names (the account whose
    /// credentials sign), remembered per backend and access key. Where `GET /` is not
    /// allowed, the target bucket's ACL names its owner — for this request alone, never
    /// remembered: a bucket name may be another account's.
    pub(in crate::request) async fn backend_owner(
        &self,
        target: &Target,
        route: &Route<'_>,
    ) -> Option<String> {
        let signer = route.credentials.as_ref().map(|c| c.access_key.as_str());
        let cache_key = format!("{}\n{}", route.backend.name, signer.unwrap_or_default());
        if let Some(id) = self.backend_owners.get(&cache_key) {
            return Some(id);
        }
        let service = Target {
            bucket: None,
            raw_key: None,
            ..target.clone()
        };
        let service_route = Route {
            tenant: route.tenant,
            backend: route.backend,
            backend_bucket: None,
            credentials: route.credentials.clone(),
        };
        let listed = self
            .backend_call(
                Operation::ListBuckets,
                Params::default(),
                &service,
                &service_route,
            )
            .await;
        if let Some(id) = listed
            .filter(|(h, _)| h.status == 200)
            .and_then(|(_, body)| listing_owner_id(&body))
        {
            self.backend_owners.insert(cache_key, id.clone());
            return Some(id);
        }
        let params = Params::default().with("acl", "");
        let (header, body) = self
            .backend_call(Operation::GetBucketAcl, params, &bucket_of(target), route)
            .await?;
        acl::owner_id(&body).filter(|_| header.status == 200)
    }
}

/// The `<Owner><ID>` of a `ListAllMyBucketsResult` (in whichever order `Owner`'s children
/// come: s3s writes `DisplayName` first).
fn listing_owner_id(body: &[u8]) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut id = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => path.push(e.local_name().as_ref().to_vec()),
            Event::End(_) => {
                let names: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
                if names == [b"ListAllMyBucketsResult".as_slice(), b"Owner", b"ID"] {
                    return Some(id.trim().to_string()).filter(|i| !i.is_empty());
                }
                path.pop();
            }
            Event::Text(t)
                if path.len() == 3
                    && path[0] == b"ListAllMyBucketsResult"
                    && path[1] == b"Owner"
                    && path[2] == b"ID" =>
            {
                id.push_str(&t.decode().ok()?);
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// The checks against a fake backend whose state each test sets.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backend_account_is_the_owner_its_listing_names() {
        let s3s = b"<ListAllMyBucketsResult><Buckets/><Owner><DisplayName>store</DisplayName><ID>store</ID></Owner></ListAllMyBucketsResult>";
        assert_eq!(listing_owner_id(s3s).as_deref(), Some("store"));
        let rgw = b"<?xml version=\"1.0\"?><ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>main</ID><DisplayName>Main User</DisplayName></Owner><Buckets><Bucket><Name>b</Name></Bucket></Buckets></ListAllMyBucketsResult>";
        assert_eq!(listing_owner_id(rgw).as_deref(), Some("main"));
        assert_eq!(
            listing_owner_id(b"<Error><Code>AccessDenied</Code></Error>"),
            None
        );
    }
    use crate::config::{Overwrite as TenantOverwrite, Tenant};
    use std::sync::Mutex;

    /// A write forgets kept source HEADs only while one may still be kept: never before the
    /// first, nor once the last is past its lifetime (the clock unread before any was kept).
    #[test]
    fn a_write_forgets_source_heads_only_while_one_may_be_kept() {
        assert!(!may_still_be_kept(0, || panic!("no clock read")));
        assert!(may_still_be_kept(1_000, || 1_000));
        assert!(may_still_be_kept(1_000, || 1_006));
        assert!(!may_still_be_kept(1_000, || 1_007));
    }

    #[test]
    fn a_versioning_answer_read_across_a_change_is_not_kept() {
        let cache = VersioningCache::default();
        let kept = |bucket: &str| cache.get(bucket).map(|v| v.keeps(None));
        // Read, nothing changed meanwhile: kept.
        let asked = cache.generation("b");
        cache.keep("b".into(), Versioned::On, asked);
        assert_eq!(kept("b"), Some(true));
        // A suspension is sent while a read is under way: the read's "enabled" is not kept,
        // and what was kept before is gone.
        let asked = cache.generation("b");
        cache.forget("b");
        cache.keep("b".into(), Versioned::On, asked);
        assert_eq!(kept("b"), None);
        // A read begun after the change is kept again.
        let asked = cache.generation("b");
        cache.keep("b".into(), Versioned::Off, asked);
        assert_eq!(kept("b"), Some(false));
        // Another bucket's changes (outside its shard) leave this bucket's reads kept.
        let other = (0..1000)
            .map(|i| format!("other-{i}"))
            .find(|o| !std::ptr::eq(cache.counter(o), cache.counter("c")))
            .unwrap();
        let asked = cache.generation("c");
        cache.forget(&other);
        cache.keep("c".into(), Versioned::On, asked);
        assert_eq!(kept("c"), Some(true));
    }

    /// MinIO's exclusions from versioning name objects that keep no versions: those that begin
    /// like a prefix (`*` any run), and folders; the others, and the bucket, keep them.
    #[test]
    fn minio_s_exclusions_name_objects_without_versions() {
        let doc = b"<VersioningConfiguration><Status>Enabled</Status><ExcludeFolders>true</ExcludeFolders><ExcludedPrefixes><Prefix>tmp/</Prefix></ExcludedPrefixes><ExcludedPrefixes><Prefix>jobs/*/_temporary/</Prefix></ExcludedPrefixes></VersioningConfiguration>";
        let versioned = Versioned::read(doc);
        for (key, keeps) in [
            ("tmp/a", false),
            ("tmp", true),
            ("dir/", false),
            ("jobs/1/_temporary/x", false),
            ("jobs/1/2/_temporary/", false),
            ("jobs/1/final", true),
            ("jobs/_temporary/x", true),
            ("data/a", true),
        ] {
            assert_eq!(versioned.keeps(Some(key.as_bytes())), keeps, "{key}");
        }
        assert!(versioned.keeps(None));
        let plain = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
        assert!(matches!(Versioned::read(plain), Versioned::On));
        let suspended = b"<VersioningConfiguration><Status>Suspended</Status><ExcludeFolders>true</ExcludeFolders></VersioningConfiguration>";
        assert!(!Versioned::read(suspended).keeps(Some(b"a")));
        // Which write or delete replaces a key's `null` version wherever it stands: every
        // one where versioning is suspended, an excluded object's where it is Enabled — not
        // where it was never set (the `null` version is the only one) nor for a versioned one.
        assert!(Versioned::read(suspended).replaces_null(b"a"));
        assert!(versioned.replaces_null(b"tmp/a"));
        assert!(!versioned.replaces_null(b"data/a"));
        let never = b"<VersioningConfiguration/>";
        assert!(!Versioned::read(never).replaces_null(b"a"));
    }

    #[derive(Default)]
    struct Fake {
        bucket_status: Option<u16>,
        versioned: bool,
        /// Object keys and their sizes.
        objects: Vec<(Vec<u8>, u64, &'static str)>,
        /// Part sizes of the open upload `u`, served 2 a page.
        parts: Option<Vec<(u32, u64)>>,
        /// Every object's Object Lock: retain-until date and legal hold.
        lock: Option<(&'static str, bool)>,
        /// The lock's mode is S3's compliance (else governance).
        compliance: bool,
        /// A HEAD's status when it is not the object's (a backend failing).
        failing: Option<u16>,
        /// Listings get no answer.
        unlisted: bool,
        /// Parts listings get no answer.
        parts_unknown: bool,
        /// Parts listings find the bucket gone.
        parts_bucket_gone: bool,
        /// A HEAD names no ETag (an object encrypted with a customer's key, its lock read by
        /// its sub-resources).
        no_etag: bool,
        /// The status of a HEAD of the key's `null` version, where it is not the object's.
        null_version: Option<u16>,
        /// What a version listing names the key's newest version.
        newest: Option<Option<String>>,
        asked: Mutex<Vec<&'static str>>,
    }

    impl Fake {
        /// The object's header where the fake holds it (a HEAD's 200).
        fn object_head(&self, at: At<'_>) -> Option<ResponseHeader> {
            self.asked.lock().unwrap().push("head");
            let key = at.target.key()?;
            let (_, size, etag) = self
                .objects
                .iter()
                .find(|(k, _, _)| k.as_slice() == &*key)?;
            let mut h = ResponseHeader::build(200, None).unwrap();
            h.insert_header("content-length", size.to_string()).unwrap();
            if !self.no_etag {
                h.insert_header("etag", *etag).unwrap();
            }
            if let Some((until, hold)) = self.lock {
                h.insert_header("x-amz-object-lock-retain-until-date", until)
                    .unwrap();
                let mode = if self.compliance {
                    "COMPLIANCE"
                } else {
                    "GOVERNANCE"
                };
                h.insert_header("x-amz-object-lock-mode", mode).unwrap();
                let status = if hold { "ON" } else { "OFF" };
                h.insert_header("x-amz-object-lock-legal-hold", status)
                    .unwrap();
            }
            Some(h)
        }
    }

    #[async_trait]
    impl Probe for Fake {
        async fn bucket_status(&self, _: At<'_>) -> Option<u16> {
            self.asked.lock().unwrap().push("bucket");
            self.bucket_status
        }
        async fn versioning_enabled(&self, _: At<'_>) -> bool {
            self.asked.lock().unwrap().push("versioning");
            self.versioned
        }
        async fn replaces_null_version(&self, _: At<'_>) -> bool {
            false
        }
        async fn newest_version(&self, _: At<'_>) -> Option<Option<String>> {
            self.newest.clone()
        }
        async fn object_answer(&self, at: At<'_>, version: Option<&str>) -> Option<ResponseHeader> {
            if let Some(status) = self.failing {
                return ResponseHeader::build(status, None).ok();
            }
            if let Some(status) = self.null_version.filter(|_| version == Some("null")) {
                return ResponseHeader::build(status, None).ok();
            }
            let found = self.object_head(at);
            found.or_else(|| ResponseHeader::build(404, None).ok())
        }
        async fn bucket_locked(&self, _: At<'_>) -> bool {
            self.asked.lock().unwrap().push("lock");
            false
        }
        async fn may_keep_locks(&self, _: At<'_>) -> bool {
            self.asked.lock().unwrap().push("may-lock");
            self.lock.is_some()
        }
        async fn any_key_under(&self, _: At<'_>, prefix: &[u8]) -> Option<bool> {
            self.asked.lock().unwrap().push("list");
            let found = self.objects.iter().any(|(k, _, _)| k.starts_with(prefix));
            (!self.unlisted).then_some(found)
        }
        async fn key_listed(&self, at: At<'_>) -> Option<bool> {
            self.asked.lock().unwrap().push("listed");
            let key = at.target.key()?;
            let found = self.objects.iter().any(|(k, _, _)| k.as_slice() == &*key);
            (!self.unlisted).then_some(found)
        }
        async fn listed_etag(&self, at: At<'_>) -> Option<Option<String>> {
            self.asked.lock().unwrap().push("listed");
            let key = at.target.key()?;
            let found = self.objects.iter().find(|(k, _, _)| k.as_slice() == &*key);
            (!self.unlisted).then(|| found.map(|(_, _, etag)| etag.to_string()))
        }
        async fn parts_page(
            &self,
            _: At<'_>,
            id: &str,
            (marker, _): (Option<&str>, u32),
        ) -> PartsPage {
            self.asked.lock().unwrap().push("parts");
            if self.parts_unknown {
                return PartsPage::Unknown;
            }
            if self.parts_bucket_gone {
                return PartsPage::Gone(HcpCode::NoSuchBucket);
            }
            let Some(parts) = self.parts.as_ref().filter(|_| id == "u") else {
                return PartsPage::Gone(HcpCode::NoSuchUpload);
            };
            let from: u32 = marker.map_or(0, |m| m.parse().unwrap());
            let page: Vec<(u32, u64)> = parts
                .iter()
                .copied()
                .filter(|(n, _)| *n > from)
                .take(2)
                .collect();
            let next = (page.len() == 2 && parts.last().unwrap().0 > page[1].0)
                .then(|| page[1].0.to_string());
            PartsPage::Listed((page, next))
        }
    }

    fn tenant(overwrite: TenantOverwrite) -> Tenant {
        Tenant {
            name: "t".into(),
            backend: "b".into(),
            bucket_prefix: String::new(),
            anonymous: Default::default(),
            overwrite,
            folders: false,
            retention: Default::default(),
            records_bucket: None,
            anonymous_acls: false.into(),
            removed: false.into(),
            cors: None,
        }
    }

    fn target(key: &str) -> Target {
        Target {
            tenant: "t".into(),
            bucket: Some("bkt".into()),
            raw_key: Some(key.as_bytes().into()),
            virtual_host: false,
        }
    }

    /// Runs `f` with a route over a backend set up by `setup`.
    async fn with_at<R>(
        overwrite: TenantOverwrite,
        setup: impl FnOnce(&mut crate::request::route::BackendRuntime),
        key: &str,
        f: impl AsyncFnOnce(At<'_>) -> R,
    ) -> R {
        let tenant = tenant(overwrite);
        let mut backend = crate::request::route::BackendRuntime::for_tests();
        setup(&mut backend);
        let route = Route {
            tenant: &tenant,
            backend: &backend,
            backend_bucket: Some("bkt".into()),
            credentials: None,
        };
        let target = target(key);
        f(At {
            target: &target,
            route: &route,
        })
        .await
    }

    /// The `null` version a write or delete replaces where versioning is suspended: an old
    /// one (the key's newest is another version) needs the purge permission; the newest, or
    /// none (or a delete marker), is the object itself; what the backend does not say is 503
    /// — whatever a HEAD of the object would name (one encrypted with a customer's key is read
    /// by its sub-resources, and names no version).
    #[tokio::test]
    async fn an_old_null_version_is_told_from_the_newest() {
        let newest = |v: &str| Some(Some(v.to_string()));
        for (null, listed, refused) in [
            (200, newest("v2"), Some(HcpCode::AccessDenied)),
            (200, newest("null"), None),
            (404, None, None),
            (405, None, None),
            (400, None, None),
            (403, None, Some(HcpCode::ServiceUnavailable)),
            (503, None, Some(HcpCode::ServiceUnavailable)),
            (200, None, Some(HcpCode::ServiceUnavailable)),
            (200, Some(None), Some(HcpCode::ServiceUnavailable)),
        ] {
            let fake = Fake {
                null_version: Some(null),
                newest: listed.clone(),
                objects: vec![(b"k".to_vec(), 1, "\"e\"")],
                ..Fake::default()
            };
            let got = with_at(
                TenantOverwrite::Allow,
                |_| {},
                "k",
                async |at| check_null_version(&fake, at).await,
            )
            .await;
            assert_eq!(got.err().map(|e| e.code), refused, "{null} {listed:?}");
        }
    }

    /// A metadata change writes over the object itself only where its newest version is the
    /// `null` one (where versioning is suspended, another version's would be replaced): the
    /// version read from S3's header or OBS's (OBS's own signing names it in `x-obs-version-id`,
    /// which was read as no version: a null version replaced).
    #[tokio::test]
    async fn a_metadata_change_replaces_only_the_null_version() {
        let head = |name: &str, value: &str| {
            let mut h = ResponseHeader::build(200, None).unwrap();
            if !name.is_empty() {
                h.insert_header(name.to_string(), value).unwrap();
            }
            h
        };
        let fake = Fake::default();
        for (name, value, replaces) in [
            ("", "", true),
            ("x-amz-version-id", "null", true),
            ("x-amz-version-id", "V1", false),
            ("x-obs-version-id", "null", true),
            ("x-obs-version-id", "V1", false),
        ] {
            let h = head(name, value);
            let got = with_at(
                TenantOverwrite::RefuseUnversioned,
                |_| {},
                "k",
                async |at| replaces_itself(&fake, Some(&h), at).await,
            )
            .await;
            assert_eq!(got, replaces, "{name}: {value}");
        }
    }

    /// A metadata change under retention adds properties and changes nothing else: every
    /// property asked again with its value (the gateway's own aside), the content headers and
    /// storage class the object's (STANDARD named or not), no customer's key, no property the
    /// HEAD could not show.
    #[test]
    fn an_addition_asks_every_property_again_and_changes_nothing_else() {
        let mut head = ResponseHeader::build(200, None).unwrap();
        for (n, v) in [
            ("content-type", "text/plain"),
            ("x-amz-meta-author", "R"),
            ("x-amz-meta-hcp-gateway-owner", "someone"),
        ] {
            head.insert_header(n, v).unwrap();
        }
        let base = [("content-type", "text/plain"), ("x-amz-meta-author", "R")];
        let with = |more: &[(&str, &str)], head: &ResponseHeader| {
            let mut all = base.to_vec();
            all.extend_from_slice(more);
            adds_metadata_only(&put(&all), head)
        };
        assert!(with(&[], &head));
        assert!(with(&[("x-amz-meta-reviewed", "yes")], &head));
        assert!(with(&[("x-amz-storage-class", "STANDARD")], &head));
        for changed in [
            &[("x-amz-storage-class", "REDUCED_REDUNDANCY")][..],
            &[("content-encoding", "gzip")][..],
            &[("x-amz-server-side-encryption-customer-algorithm", "AES256")][..],
        ] {
            assert!(!with(changed, &head), "{changed:?}");
        }
        assert!(!adds_metadata_only(
            &put(&[("content-type", "text/plain")]),
            &head
        ));
        let changed = [("content-type", "text/plain"), ("x-amz-meta-author", "S")];
        assert!(!adds_metadata_only(&put(&changed), &head));
        head.insert_header("x-amz-missing-meta", "1").unwrap();
        assert!(!with(&[], &head));
    }

    fn put(headers: &[(&str, &str)]) -> pingora::http::RequestHeader {
        let mut req = pingora::http::RequestHeader::build("PUT", b"/bkt/k", None).unwrap();
        for (n, v) in headers {
            req.insert_header(n.to_string(), *v).unwrap();
        }
        req
    }

    fn code(r: Result<Overwrite, HcpError>) -> Result<&'static str, HcpCode> {
        r.map(|o| match o {
            Overwrite::Unguarded => "unguarded",
            Overwrite::AskBackend => "ask backend",
        })
        .map_err(|e| e.code)
    }

    /// `check_retained` of `op` on `key` in a namespace that keeps retention.
    async fn in_retention(
        fake: &Fake,
        op: Operation,
        key: &str,
        params: &Params,
    ) -> Result<(), u16> {
        in_mode(
            crate::config::RetentionMode::Enterprise,
            fake,
            op,
            key,
            params,
        )
        .await
    }

    async fn in_mode(
        mode: crate::config::RetentionMode,
        fake: &Fake,
        op: Operation,
        key: &str,
        params: &Params,
    ) -> Result<(), u16> {
        let mut tenant = tenant(TenantOverwrite::Allow);
        tenant.retention.mode = mode;
        let backend = crate::request::route::BackendRuntime::for_tests();
        let route = Route {
            tenant: &tenant,
            backend: &backend,
            backend_bucket: Some("bkt".into()),
            credentials: None,
        };
        let target = target(key);
        let at = At {
            target: &target,
            route: &route,
        };
        check_retained(fake, op, params, at, None)
            .await
            .map_err(|e| e.status)
    }

    /// An object `k` whose lock is `lock` (retain-until date, hold).
    fn locked_object(lock: Option<(&'static str, bool)>) -> Fake {
        Fake {
            objects: vec![(b"k".to_vec(), 1, "\"e\"")],
            lock,
            ..Fake::default()
        }
    }

    /// In a retention namespace: no new version over an object under retention or on hold
    /// (403), no delete of one (409) but a privileged delete past retention (never a hold), and
    /// nothing at all when the object's lock cannot be read (503).
    #[tokio::test]
    async fn retained_objects_are_neither_replaced_nor_deleted() {
        use crate::request::classify::Effects;
        let mut privileged = Params::default();
        privileged.effects = Effects {
            bypass_governance: true,
            ..Effects::default()
        };
        let (run, object) = (in_retention, locked_object);
        let none = Params::default();
        let retained = object(Some(("2100-01-01T00:00:00Z", false)));
        assert_eq!(
            run(&retained, Operation::PutObject, "k", &none).await,
            Err(403)
        );
        assert_eq!(
            run(&retained, Operation::DeleteObject, "k", &none).await,
            Err(409)
        );
        assert_eq!(
            run(&retained, Operation::DeleteObject, "k", &privileged).await,
            Ok(())
        );
        assert_eq!(
            run(&retained, Operation::PutObject, "new", &none).await,
            Ok(())
        );
        // A privileged delete passes governance only, never S3's compliance mode.
        let compliance = Fake {
            compliance: true,
            ..retained
        };
        assert_eq!(
            run(&compliance, Operation::DeleteObject, "k", &privileged).await,
            Err(409)
        );
        let retained = Fake {
            compliance: false,
            ..compliance
        };
        // Nor any version of it: a purge is judged on the object as it is now.
        let mut purge = Params::default();
        purge.set("versionId", "old");
        assert_eq!(
            run(&retained, Operation::DeleteObject, "k", &purge).await,
            Err(409)
        );
        let held = object(Some(("2000-01-01T00:00:00Z", true)));
        assert_eq!(
            run(&held, Operation::DeleteObject, "k", &privileged).await,
            Err(409)
        );
        assert_eq!(
            run(&held, Operation::DeleteObject, "k", &purge).await,
            Err(409)
        );
        purge.effects.bypass_governance = true;
        assert_eq!(
            run(&retained, Operation::DeleteObject, "k", &purge).await,
            Ok(())
        );
        assert_eq!(
            run(&held, Operation::CompleteMultipartUpload, "k", &none).await,
            Err(403)
        );
        let expired = object(Some(("2000-01-01T00:00:00Z", false)));
        assert_eq!(
            run(&expired, Operation::DeleteObject, "k", &none).await,
            Ok(())
        );
        let failing = Fake {
            failing: Some(500),
            ..object(None)
        };
        assert_eq!(
            run(&failing, Operation::PutObject, "k", &none).await,
            Err(503)
        );
    }

    /// A complete of an upload that is gone (completed, its answer lost; aborted) is 404 over
    /// a held or retained key; of one still open, 403.
    #[tokio::test]
    async fn a_gone_upload_s_complete_is_no_upload_whatever_the_key_holds() {
        let (run, object) = (in_retention, locked_object);
        let mut upload = Params::default();
        upload.set("uploadId", "u");
        for lock in [
            ("2000-01-01T00:00:00Z", true),
            ("2100-01-01T00:00:00Z", false),
        ] {
            let gone = object(Some(lock));
            let complete = Operation::CompleteMultipartUpload;
            assert_eq!(run(&gone, complete, "k", &upload).await, Err(404));
            let open = Fake {
                parts: Some(vec![(1, 5)]),
                ..object(Some(lock))
            };
            assert_eq!(run(&open, complete, "k", &upload).await, Err(403));
        }
    }

    /// Where the tenant keeps no HCP retention, S3's Object Lock still keeps an object from a
    /// delete naming no version (409, as HCP's), S3's bypass passing governance alone; a write
    /// and a purge are the backend's to judge, and a bucket without Object Lock asks no HEAD.
    #[tokio::test]
    async fn s3_locks_keep_objects_where_no_hcp_retention_is_kept() {
        use crate::config::RetentionMode::Off;
        let none = Params::default();
        let mut bypass = Params::default();
        bypass.effects.bypass_governance = true;
        let retained = locked_object(Some(("2100-01-01T00:00:00Z", false)));
        let delete = Operation::DeleteObject;
        assert_eq!(in_mode(Off, &retained, delete, "k", &none).await, Err(409));
        assert_eq!(in_mode(Off, &retained, delete, "k", &bypass).await, Ok(()));
        let put = Operation::PutObject;
        assert_eq!(in_mode(Off, &retained, put, "k", &none).await, Ok(()));
        let mut purge = Params::default();
        purge.set("versionId", "v");
        assert_eq!(in_mode(Off, &retained, delete, "k", &purge).await, Ok(()));
        let held = locked_object(Some(("2000-01-01T00:00:00Z", true)));
        assert_eq!(in_mode(Off, &held, delete, "k", &bypass).await, Err(409));
        let compliance = Fake {
            compliance: true,
            ..locked_object(Some(("2100-01-01T00:00:00Z", false)))
        };
        assert_eq!(
            in_mode(Off, &compliance, delete, "k", &bypass).await,
            Err(409)
        );
        let unlocked = locked_object(None);
        assert_eq!(in_mode(Off, &unlocked, delete, "k", &none).await, Ok(()));
        assert_eq!(*unlocked.asked.lock().unwrap(), ["may-lock"]);
    }

    /// A lock the HEAD says nothing readable of is no lock: nothing is written, deleted or
    /// changed (503).
    #[tokio::test]
    async fn an_unreadable_lock_is_not_taken_for_none() {
        let (run, object, none) = (in_retention, locked_object, Params::default());
        // A date that is no date: no lock read, nothing done.
        let garbled = object(Some(("the year 2100", false)));
        for op in [
            Operation::PutObject,
            Operation::DeleteObject,
            Operation::PutObjectRetention,
        ] {
            assert_eq!(run(&garbled, op, "k", &none).await, Err(503), "{op:?}");
        }
        // A retention change: the backend's own refusals (404, a delete marker's 405) are its
        // to answer; any other answer of the HEAD says nothing of the hold.
        for (status, expected) in [
            (404, Ok(())),
            (405, Ok(())),
            (403, Err(503)),
            (400, Err(503)),
        ] {
            let answered = Fake {
                failing: Some(status),
                ..object(None)
            };
            let r = run(&answered, Operation::PutObjectRetention, "k", &none).await;
            assert_eq!(r, expected, "{status}");
        }
    }

    /// A complete's If-Match is judged on the object's HEAD — or, where the HEAD names no ETag
    /// (an object encrypted with a customer's key), on the ETag a listing names: 200 with the
    /// PreconditionFailed document where it fails or the object is none; a listing without an
    /// answer is 503.
    #[tokio::test]
    async fn a_complete_s_if_match_is_judged() {
        for no_etag in [false, true] {
            let fake = Fake {
                objects: vec![(b"k".to_vec(), 1, "\"e\"")],
                no_etag,
                ..Fake::default()
            };
            let check = async |fake: &Fake, key: &str, asked: &str| {
                let req = put(&[("if-match", asked)]);
                with_at(
                    TenantOverwrite::Allow,
                    |_| {},
                    key,
                    async |at| {
                        let op = (Operation::CompleteMultipartUpload, false, Some("u"));
                        check_overwrite(fake, &req, op, at)
                            .await
                            .map(|_| ())
                            .map_err(|e| (e.status, e.code))
                    },
                )
                .await
            };
            let failed = Err((200, HcpCode::PreconditionFailed));
            assert_eq!(check(&fake, "k", "\"e\"").await, Ok(()), "{no_etag}");
            assert_eq!(check(&fake, "k", "*").await, Ok(()), "{no_etag}");
            assert_eq!(check(&fake, "k", "\"other\"").await, failed, "{no_etag}");
            assert_eq!(check(&fake, "new", "\"e\"").await, failed, "{no_etag}");
            let unlisted = Fake {
                unlisted: true,
                ..fake
            };
            let expected = match no_etag {
                true => Err((503, HcpCode::ServiceUnavailable)),
                false => Ok(()),
            };
            assert_eq!(check(&unlisted, "k", "\"e\"").await, expected);
        }
    }

    #[tokio::test]
    async fn rule_41_refuses_names_that_exist_as_objects_or_folders() {
        use TenantOverwrite::*;
        let fake = Fake {
            objects: vec![(b"k".to_vec(), 1, "\"e\""), (b"dir/x".to_vec(), 1, "\"e\"")],
            ..Fake::default()
        };
        let check = async |overwrite, key: &str, conditional: bool, headers: &[(&str, &str)]| {
            let req = put(headers);
            let set = move |b: &mut crate::request::route::BackendRuntime| {
                b.conditional_writes = conditional
            };
            with_at(overwrite, set, key, async |at| {
                code(check_overwrite(&fake, &req, (Operation::PutObject, false, None), at).await)
            })
            .await
        };
        assert_eq!(check(Allow, "k", false, &[]).await, Ok("unguarded"));
        assert_eq!(
            check(RefuseUnversioned, "k", false, &[]).await,
            Err(HcpCode::OperationAborted)
        );
        assert_eq!(
            check(RefuseUnversioned, "dir", false, &[]).await,
            Err(HcpCode::OperationAborted)
        );
        assert_eq!(
            check(RefuseUnversioned, "new", false, &[]).await,
            Ok("unguarded")
        );
        // A backend with conditional writes is asked to refuse atomically: no HEAD.
        assert_eq!(
            check(RefuseUnversioned, "new", true, &[]).await,
            Ok("ask backend")
        );
        // ... but not with a client's If-Match, which cannot travel with the gateway's
        // If-None-Match: the gateway looks first (409 for an existing name).
        let if_match = [("if-match", "\"e\"")];
        assert_eq!(
            check(RefuseUnversioned, "k", true, &if_match).await,
            Err(HcpCode::OperationAborted)
        );
        assert_eq!(
            check(RefuseUnversioned, "new", true, &if_match).await,
            Ok("unguarded")
        );
        // Create-only writes where the backend would ignore If-None-Match: 412 by a HEAD.
        let star = [("if-none-match", "*")];
        assert_eq!(
            check(Allow, "k", false, &star).await,
            Err(HcpCode::PreconditionFailed)
        );
        assert_eq!(check(Allow, "new", false, &star).await, Ok("unguarded"));
        assert_eq!(check(Allow, "k", true, &star).await, Ok("unguarded"));
        // With versioning enabled, rule 41 does not apply.
        let versioned = Fake {
            versioned: true,
            ..Fake::default()
        };
        let req = put(&[]);
        let r = with_at(
            RefuseUnversioned,
            |_| {},
            "k",
            async |at| {
                code(
                    check_overwrite(&versioned, &req, (Operation::PutObject, false, None), at)
                        .await,
                )
            },
        )
        .await;
        assert_eq!(r, Ok("unguarded"));
        assert_eq!(*versioned.asked.lock().unwrap(), ["versioning"]);
    }

    /// What the backend does not say — a HEAD that fails, a listing not answered — is not
    /// taken for an absent name: 503, where the write would go on as if nothing were there.
    #[tokio::test]
    async fn rule_41_is_not_judged_without_the_backend_s_answer() {
        use TenantOverwrite::*;
        let req = put(&[]);
        let failing = Fake {
            failing: Some(500),
            ..Fake::default()
        };
        let unlisted = Fake {
            unlisted: true,
            ..Fake::default()
        };
        // A HEAD refused for want of a customer's key (400): the listing says whether the
        // name is there (409), or not; a listing that says nothing, 503.
        let encrypted = Fake {
            failing: Some(400),
            objects: vec![(b"k".to_vec(), 1, "\"e\"")],
            ..Fake::default()
        };
        for (key, answer) in [
            ("k", Err(HcpCode::OperationAborted)),
            ("new", Ok("unguarded")),
        ] {
            let r = with_at(
                RefuseUnversioned,
                |_| {},
                key,
                async |at| {
                    code(
                        check_overwrite(&encrypted, &req, (Operation::PutObject, false, None), at)
                            .await,
                    )
                },
            )
            .await;
            assert_eq!(r, answer, "{key}");
        }
        let encrypted_unlisted = Fake {
            failing: Some(400),
            unlisted: true,
            ..Fake::default()
        };
        for (fake, last) in [
            (&failing, "versioning"),
            (&unlisted, "list"),
            (&encrypted_unlisted, "listed"),
        ] {
            let r = with_at(
                RefuseUnversioned,
                |_| {},
                "new",
                async |at| {
                    code(check_overwrite(fake, &req, (Operation::PutObject, false, None), at).await)
                },
            )
            .await;
            assert_eq!(r, Err(HcpCode::ServiceUnavailable), "{last}");
            assert_eq!(fake.asked.lock().unwrap().last(), Some(&last));
        }
    }

    #[tokio::test]
    async fn completes_need_big_enough_parts_across_listing_pages() {
        let complete = |n: u32| {
            let parts: String = (1..=n)
                .map(|i| format!("<Part><PartNumber>{i}</PartNumber><ETag>\"e\"</ETag></Part>"))
                .collect();
            format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>")
        };
        let mib = 1 << 20;
        let fake = |sizes: &[u64]| Fake {
            parts: Some(
                sizes
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i as u32 + 1, *s))
                    .collect(),
            ),
            ..Fake::default()
        };
        let run = async |fake: Fake, n: u32, min: u64| {
            let body = complete(n);
            with_at(
                TenantOverwrite::Allow,
                |b| b.min_part_bytes = 5 * mib,
                "k",
                async |at| {
                    check_complete(&fake, min, (body.as_bytes(), "u", false), at)
                        .await
                        .map(|parts| parts.len() as u32)
                        .map_err(|e| e.code)
                },
            )
            .await
        };
        assert_eq!(
            run(fake(&[5 * mib, 5 * mib, 5 * mib, 1, 5 * mib]), 5, mib).await,
            Err(HcpCode::EntityTooSmall)
        );
        assert_eq!(
            run(fake(&[5 * mib, 5 * mib, 5 * mib, 5 * mib, 1]), 5, mib).await,
            Ok(5)
        );
        // The fifth part is on the third page: the pages are followed.
        assert_eq!(
            run(
                fake(&[5 * mib; 4].iter().copied().chain([2]).collect::<Vec<_>>()),
                5,
                mib
            )
            .await,
            Ok(5)
        );
    }

    /// An upload's listing that finds its bucket gone is HCP's NoSuchBucket naming the bucket;
    /// one that finds the upload gone, NoSuchUpload.
    #[tokio::test]
    async fn an_upload_s_bucket_gone_is_named() {
        let gone = Fake {
            parts_bucket_gone: true,
            ..Fake::default()
        };
        let e = with_at(
            TenantOverwrite::Allow,
            |_| {},
            "k",
            async |at| upload_listed(&gone, at, "u").await.unwrap_err(),
        )
        .await;
        assert_eq!(e.code, HcpCode::NoSuchBucket);
        assert_eq!(e.bucket.as_deref(), Some("bkt"));
        let e = with_at(
            TenantOverwrite::Allow,
            |_| {},
            "k",
            async |at| {
                upload_listed(&Fake::default(), at, "gone")
                    .await
                    .unwrap_err()
            },
        )
        .await;
        assert_eq!((e.code, e.bucket), (HcpCode::NoSuchUpload, None));
    }

    /// Rule 26: the part copied is at most a part's size — the whole source, or the range as
    /// it is copied (to the source's end).
    #[tokio::test]
    async fn part_copies_are_held_to_a_part_s_size() {
        let source = || {
            let mut h = ResponseHeader::build(200, None).unwrap();
            h.insert_header("content-length", "10").unwrap();
            async move { Ok(Some(Arc::new(h))) }
        };
        let run = async |range: Option<&str>| {
            let mut r = put(&[("x-amz-copy-source", "/bkt/src")]);
            if let Some(range) = range {
                r.insert_header("x-amz-copy-source-range", range).unwrap();
            }
            let judged = check_part_copy(&r, source(), 8).await;
            judged.map(|j| j.map(|j| j.range)).map_err(|e| e.code)
        };
        assert_eq!(run(None).await, Err(HcpCode::EntityTooLarge));
        for (range, judged) in [
            ("bytes=0-8", Err(HcpCode::EntityTooLarge)),
            ("bytes=1-5000", Err(HcpCode::EntityTooLarge)),
            ("bytes=0-7", Ok(None)),
            ("bytes=1-8", Ok(None)),
            ("bytes=2-5000", Ok(Some(Some("bytes=2-9".to_string())))),
        ] {
            assert_eq!(run(Some(range)).await, judged, "{range}");
        }
        let mut small = put(&[("x-amz-copy-source", "/bkt/src")]);
        small
            .insert_header("x-amz-copy-source-range", "bytes=0-1")
            .unwrap();
        assert_eq!(
            check_part_copy(&small, source(), 10)
                .await
                .map_err(|e| e.code),
            Ok(None)
        );
        // The whole source that fits is pinned to the source whose size was read.
        let tagged = || {
            let mut h = ResponseHeader::build(200, None).unwrap();
            h.insert_header("content-length", "10").unwrap();
            h.insert_header("etag", "\"abc\"").unwrap();
            async move { Ok(Some(Arc::new(h))) }
        };
        let whole = put(&[("x-amz-copy-source", "/bkt/src")]);
        let judged = check_part_copy(&whole, tagged(), 10)
            .await
            .map_err(|e| e.code);
        let pinned = JudgedSource {
            range: None,
            etag: Some("\"abc\"".into()),
        };
        assert_eq!(judged, Ok(Some(pinned)));
    }

    #[tokio::test]
    async fn part_copies_check_the_upload_the_range_and_the_conditions() {
        let fake = Fake {
            parts: Some(vec![]),
            ..Fake::default()
        };
        let source = || {
            let mut h = ResponseHeader::build(200, None).unwrap();
            h.insert_header("content-length", "10").unwrap();
            h.insert_header("etag", "\"abc\"").unwrap();
            async move { Ok(Some(Arc::new(h))) }
        };
        let req = |headers: &[(&str, &str)]| {
            let mut r = put(&[("x-amz-copy-source", "/bkt/src")]);
            for (n, v) in headers {
                r.insert_header(n.to_string(), *v).unwrap();
            }
            r
        };
        let max_part = u64::MAX;
        let run = async |upload: &str, headers: &[(&str, &str)]| {
            let r = req(headers);
            with_at(
                TenantOverwrite::Allow,
                |_| {},
                "k",
                async |at| {
                    let listed = upload_listed(&fake, at, upload).await.map_err(|e| e.code)?;
                    assert!(listed, "{upload}");
                    check_part_copy(&r, source(), max_part)
                        .await
                        .map_err(|e| e.code)
                },
            )
            .await
        };
        assert_eq!(run("gone", &[]).await, Err(HcpCode::NoSuchUpload));
        // (An upload whose listing went unanswered is not known to have been there.)
        let unknown = Fake {
            parts_unknown: true,
            ..Fake::default()
        };
        let listed = with_at(
            TenantOverwrite::Allow,
            |_| {},
            "k",
            async |at| upload_listed(&unknown, at, "u").await.map_err(|e| e.code),
        );
        assert_eq!(listed.await, Ok(false));
        assert_eq!(
            run("u", &[("x-amz-copy-source-range", "bytes=0-9")]).await,
            Ok(None)
        );
        assert_eq!(
            run("u", &[("x-amz-copy-source-range", "bytes=10-12")]).await,
            Err(HcpCode::InvalidArgument)
        );
        // (A range that starts inside the source and ends past it: copied to its end, pinned.)
        for (asked, sent) in [("bytes=0-10", "bytes=0-9"), ("bytes=9-5000", "bytes=9-9")] {
            assert_eq!(
                run("u", &[("x-amz-copy-source-range", asked)]).await,
                Ok(Some(JudgedSource {
                    range: Some(sent.into()),
                    etag: Some("\"abc\"".into())
                })),
                "{asked}"
            );
        }
        // (Conditions judged: the copy is pinned to the source they held for.)
        let pinned = JudgedSource {
            range: None,
            etag: Some("\"abc\"".into()),
        };
        for list in ["\"abc\"", "\"zz\", \"abc\"", "*"] {
            assert_eq!(
                run("u", &[("x-amz-copy-source-if-match", list)]).await,
                Ok(Some(pinned.clone())),
                "{list}"
            );
        }
        assert_eq!(
            run("u", &[("x-amz-copy-source-if-match", "\"other\"")]).await,
            Err(HcpCode::PreconditionFailed)
        );
    }

    #[tokio::test]
    async fn a_recreated_bucket_is_answered_without_recreating_it() {
        let run = async |dialect, status| {
            let fake = Fake {
                bucket_status: status,
                ..Fake::default()
            };
            let set = move |b: &mut crate::request::route::BackendRuntime| {
                b.dialect = dialect;
                b.region = "us-east-1".into();
            };
            let r = with_at(TenantOverwrite::Allow, set, "k", async |at| {
                check_recreate(&fake, at).await.map_err(|e| e.code)
            })
            .await;
            let asked = fake.asked.lock().unwrap().len();
            (r, asked)
        };
        use crate::hcp::mapping::Dialect;
        assert_eq!(
            run(Dialect::Aws, Some(200)).await,
            (Err(HcpCode::BucketAlreadyOwnedByYou), 1)
        );
        assert_eq!(
            run(Dialect::Aws, Some(403)).await,
            (Err(HcpCode::BucketAlreadyExists), 1)
        );
        assert_eq!(run(Dialect::Aws, Some(404)).await, (Ok(()), 1));
        // RGW (and the store) answer a plain 200 of their own too.
        assert_eq!(
            run(Dialect::Ceph, Some(200)).await,
            (Err(HcpCode::BucketAlreadyOwnedByYou), 1)
        );
        // MinIO answers for itself (409 BucketAlreadyOwnedByYou, mapped to HCP's).
        assert_eq!(run(Dialect::Minio, Some(200)).await, (Ok(()), 0));
        // A HEAD that says nothing sends no create: its failure is the answer (503 where it
        // gave none); a bucket elsewhere (301) is the backend's to refuse.
        for (status, answer) in [
            (None, Err(HcpCode::ServiceUnavailable)),
            (Some(503), Err(HcpCode::ServiceUnavailable)),
            (Some(500), Err(HcpCode::InternalError)),
            (Some(301), Ok(())),
        ] {
            assert_eq!(run(Dialect::Aws, status).await, (answer, 1), "{status:?}");
        }
    }

    /// What the backend does not say is never taken for the safe answer: a part listing that
    /// fails where HCP's minimum is above the backend's, a copy source that cannot be read
    /// where conditions are to be judged, a lock date that is no date, a hold's HEAD that
    /// answers neither the object nor its absence — 503 each.
    #[tokio::test]
    async fn unknown_answers_are_503_where_they_would_decide() {
        let mib = 1 << 20;
        let unlisted = Fake {
            parts_unknown: true,
            ..Fake::default()
        };
        let body = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag>\
                    </Part><Part><PartNumber>2</PartNumber><ETag>\"e\"</ETag></Part>\
                    </CompleteMultipartUpload>";
        let complete = async |backend_min: u64| {
            let set =
                move |b: &mut crate::request::route::BackendRuntime| b.min_part_bytes = backend_min;
            with_at(TenantOverwrite::Allow, set, "k", async |at| {
                check_complete(&unlisted, mib, (body.as_bytes(), "u", false), at)
                    .await
                    .map(|p| p.len())
                    .map_err(|e| e.code)
            })
            .await
        };
        assert_eq!(complete(0).await, Err(HcpCode::ServiceUnavailable));
        assert_eq!(complete(5 * mib).await, Ok(2), "the backend judges its own");

        let conditional = {
            let mut r = put(&[("x-amz-copy-source", "/bkt/src")]);
            r.insert_header("x-amz-copy-source-if-match", "\"abc\"")
                .unwrap();
            r
        };
        for (status, expected) in [
            (None, Err(HcpCode::ServiceUnavailable)),
            (Some(503), Err(HcpCode::ServiceUnavailable)),
            (Some(403), Ok(None)),
            (Some(404), Ok(None)),
        ] {
            let head = status.map(|s| Arc::new(ResponseHeader::build(s, None).unwrap()));
            let judged = check_copy_conditions(&conditional, async { Ok(head) }).await;
            assert_eq!(judged.map_err(|e| e.code), expected, "{status:?}");
        }
        let copied = check_part_copy(&conditional, async { Ok(None) }, u64::MAX).await;
        assert_eq!(copied.map_err(|e| e.code), Err(HcpCode::ServiceUnavailable));
    }

    /// A lock sub-resource's refusal is read by its code: the object gone, no lock of this
    /// kind (MinIO's 400 too, a bucket without Object Lock, OBS's holds), or nothing known.
    #[test]
    fn lock_refusals_are_read_by_their_code() {
        use crate::hcp::mapping::Dialect;
        let doc = |code: &str, message: &str| {
            format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>").into_bytes()
        };
        let read = |body: &[u8], dialect, sub| no_lock_answer(body, dialect, sub);
        assert_eq!(
            read(&doc("NoSuchKey", ""), Dialect::Aws, "retention"),
            Some(NoLock::Object)
        );
        for code in [
            "NoSuchObjectLockConfiguration",
            "ObjectLockConfigurationNotFoundError",
        ] {
            assert_eq!(
                read(&doc(code, ""), Dialect::Minio, "retention"),
                Some(NoLock::OfThisKind)
            );
        }
        let missing = doc(
            "InvalidRequest",
            "Bucket is missing Object Lock Configuration",
        );
        assert_eq!(
            read(&missing, Dialect::Aws, "legal-hold"),
            Some(NoLock::OfThisKind)
        );
        assert_eq!(
            read(&doc("InvalidRequest", "other"), Dialect::Aws, "retention"),
            None
        );
        assert_eq!(
            read(&doc("AccessDenied", ""), Dialect::Aws, "legal-hold"),
            None
        );
        assert_eq!(read(b"", Dialect::Aws, "retention"), None);
        assert_eq!(
            read(b"", Dialect::Obs, "legal-hold"),
            Some(NoLock::OfThisKind)
        );
        assert_eq!(read(b"", Dialect::Obs, "retention"), None);
    }
}

//! HCP's object owners (manual, "Object owners", lines 777–785; PUT 5309; copy 6689;
//! listings' `Owner`, 3646 and 3662): an authenticated user owns the objects it stores or
//! copies, whoever owns the bucket; an anonymous writer's objects have no owner (`nobody`);
//! an object's owner has read, read ACL, write, write ACL and delete on it.
//!
//! Where the tenant keeps records (`records_bucket`), the gateway writes the owner into the
//! object itself: a metadata entry [`OWNER_METADATA`] on every PUT, copy and multipart
//! upload, holding the owner's HCP user id (or `nobody`). It travels with the object (and its
//! versions) at no cost of its own; clients can neither set it (the reserved names are
//! refused, as the backends' directives are) nor see it (GET and HEAD leave it out). A copy
//! is sent with `REPLACE` and the source's metadata read by a HEAD, so that the copier, not
//! the source's owner, owns the copy. Objects stored before owners were kept have none and
//! are shown as their bucket's owner's.
//!
//! Answers name objects' owners in ACL documents (a HEAD of the object) and listings (a HEAD
//! per listed object, 16 at a time, remembered in [`ListedOwners`]: an object instance's owner
//! never changes, so a listing of what was written or listed lately reads nothing).

use std::sync::Arc;
use std::time::Duration;

use pingora::http::ResponseHeader;

use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::authenticate::{Identity, Principal, UserStore};
use crate::request::owners::Owner;
use crate::request::*;

/// The metadata entry that holds an object's owner at the backend.
pub const OWNER_METADATA: &str = "x-amz-meta-hcp-gateway-owner";

/// Metadata names the gateway keeps for itself: refused from clients, never shown.
const RESERVED: &str = "x-amz-meta-hcp-gateway-";

/// How long a listed object's owner is remembered (an instance's owner never changes; the
/// same bytes stored again under the name by another user are seen after this long, on a
/// replica that did not store them).
pub const LISTED_TTL: Duration = Duration::from_secs(300);

/// Whether `name` (a lower-case header or form field name) is metadata the gateway keeps
/// for itself (also under OBS's prefix).
pub fn reserved(name: &str) -> bool {
    // (A metadata name's characters other than letters, digits, `.`, `-` and `:` are sent as
    // `_` — `sign::custom_metadata` — which some backends read as `-`: RGW would join such a
    // name with the gateway's own. All of them count as `-` here.)
    let folded = |b: u8| {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b':') {
            b.to_ascii_lowercase()
        } else {
            b'-'
        }
    };
    let starts = |name: &[u8], prefix: &[u8]| {
        name.len() >= prefix.len() && name.iter().zip(prefix).all(|(a, b)| folded(*a) == *b)
    };
    let name = name.as_bytes();
    starts(name, RESERVED.as_bytes()) || starts(name, b"x-obs-meta-hcp-gateway-")
}

/// Whether `op` stores a new object, whose writer becomes its owner.
pub fn stores_object(op: Operation) -> bool {
    matches!(
        op,
        Operation::PutObject | Operation::CopyObject | Operation::CreateMultipartUpload
    )
}

/// What a new object's owner entry holds for its writer: the user's HCP user id, or
/// `nobody` for an anonymous writer.
pub fn mark_of(identity: &Identity) -> String {
    match identity.principal() {
        Principal::User(u) => Owner::of(u).id,
        Principal::Anonymous => Owner::nobody().id,
    }
}

/// Whether the writer of a new object whose owner entry is `mark` owns it — and holds full
/// control of it (an anonymous writer's object has no owner).
pub fn writer_owns(mark: Option<&str>) -> bool {
    mark.is_some_and(|m| m != Owner::nobody().id)
}

/// What an object's HEAD says of its owner: the owner entry's value; `None` for an object
/// stored before owners were kept.
pub fn recorded_in(head: &ResponseHeader) -> Option<String> {
    let value = head
        .headers
        .get(OWNER_METADATA)
        .or_else(|| head.headers.get("x-obs-meta-hcp-gateway-owner"))?;
    let value = value.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// The owner an answer names for a recorded owner entry: the user with that id (named as
/// the users name it now), `nobody`, or for a user no longer configured its id alone.
pub fn owner_named(users: &UserStore, mark: &str) -> Owner {
    if mark == Owner::nobody().id {
        return Owner::nobody();
    }
    match users.with_id(mark) {
        // (The id is the user's: found by it, nothing to hash again.)
        Some(u) => Owner {
            id: mark.to_string(),
            name: u.username.clone().unwrap_or_else(|| u.access_key.clone()),
        },
        None => Owner {
            id: mark.to_string(),
            name: mark.to_string(),
        },
    }
}

/// The object instances' owners as answers last named them, by backend, backend bucket,
/// key and instance (`v:` version id, or `e:` ETag).
pub struct ListedOwners {
    known: moka::sync::Cache<String, Arc<str>>,
    /// The HEADs listings may have under way at once, all of a tenant's listings together (so
    /// that many listings at once do not flood the backend), by tenant: one tenant's listings
    /// never keep another's waiting past its budget, to name the bucket's owner instead.
    heads: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// At most this many HEADs for one tenant's listings' owners at once, in this process.
const LISTING_HEADS: usize = 64;

impl ListedOwners {
    /// The HEADs a tenant's listings share (tenants are the configuration's: a few).
    fn heads_of(&self, tenant: &str) -> Arc<tokio::sync::Semaphore> {
        let mut heads = self
            .heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = heads.get(tenant) {
            return h.clone();
        }
        let h = Arc::new(tokio::sync::Semaphore::new(LISTING_HEADS));
        heads.insert(tenant.to_string(), h.clone());
        h
    }
}

impl Default for ListedOwners {
    fn default() -> Self {
        ListedOwners {
            known: moka::sync::Cache::builder()
                .max_capacity(8 * 1024 * 1024)
                .weigher(|k: &String, v: &Arc<str>| (k.len() + v.len() + 32) as u32)
                .time_to_live(LISTED_TTL)
                .build(),
            heads: std::sync::Mutex::default(),
        }
    }
}

/// The cache key of one object instance.
fn instance_key(at: At<'_>, key: &[u8], instance: &str) -> String {
    let mut name = format!(
        "{}\n{}\n",
        at.route.backend.name,
        at.route.backend_bucket.as_deref().unwrap_or_default()
    );
    crate::sig::v4::uri_encode(key, true, &mut name);
    name.push('\n');
    name.push_str(instance);
    name
}

use crate::request::validate::probes::At;

impl ListedOwners {
    fn get(&self, at: At<'_>, key: &[u8], instance: &str) -> Option<Arc<str>> {
        self.known.get(&instance_key(at, key, instance))
    }

    fn insert(&self, at: At<'_>, key: &[u8], instance: &str, mark: &str) {
        self.known
            .insert(instance_key(at, key, instance), Arc::from(mark));
    }
}

/// One entry of a listing: its key, and the instance it names (`v:` version id where the
/// listing names versions, else `e:` ETag).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listed {
    pub key: String,
    pub instance: String,
}

/// The owners a listing names: its entries in the document's order, and each one's owner
/// (`None`: objects stored before owners were kept, objects gone meanwhile, owners not read in
/// time — they name the bucket's owner, as delete markers do).
pub struct EntryOwners {
    pub entries: Vec<Listed>,
    pub owners: Vec<Option<Owner>>,
}

impl EntryOwners {
    /// The owners of `reordered`'s entries, in its order (the same entries as read, in
    /// another order: ListObjectVersions' oldest first).
    pub fn in_order_of(&self, reordered: &[u8]) -> Option<Vec<Option<Owner>>> {
        let by_entry: std::collections::HashMap<&Listed, &Option<Owner>> =
            self.entries.iter().zip(&self.owners).collect();
        let order = listed_entries(reordered)?;
        Some(
            order
                .iter()
                .map(|e| by_entry.get(e).and_then(|o| (*o).clone()))
                .collect(),
        )
    }
}

/// The entries of a listing document that carry an owner, in the document's order:
/// `<Contents>` and `<Version>` (not `<DeleteMarker>`: a delete marker stores no metadata).
/// An entry without a key or instance is listed with empty ones (it is shown as its
/// bucket's owner's).
pub fn listed_entries(doc: &[u8]) -> Option<Vec<Listed>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(doc);
    let mut entries = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let (mut key, mut version, mut etag) = (String::new(), String::new(), String::new());
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                if path.len() == 1 && matches!(name.as_slice(), b"Contents" | b"Version") {
                    (key, version, etag) = (String::new(), String::new(), String::new());
                }
                text.clear();
                path.push(name);
            }
            Event::End(_) => {
                let closed = path.pop()?;
                let entry = path.get(1).map(Vec::as_slice);
                if path.len() == 2 && matches!(entry, Some(b"Contents" | b"Version")) {
                    match closed.as_slice() {
                        b"Key" => key = std::mem::take(&mut text),
                        b"VersionId" => version = std::mem::take(&mut text),
                        b"ETag" => etag = std::mem::take(&mut text),
                        _ => {}
                    }
                }
                if path.len() == 1 && matches!(closed.as_slice(), b"Contents" | b"Version") {
                    // (A version listing's `null` version is that version, not the current
                    // object, which may be another with the same bytes: `n:`.)
                    let instance = match (version.as_str(), etag.is_empty()) {
                        ("", false) => format!("e:{etag}"),
                        ("null", false) => format!("n:{etag}"),
                        ("" | "null", true) => String::new(),
                        (version, _) => format!("v:{version}"),
                    };
                    entries.push(Listed {
                        key: std::mem::take(&mut key),
                        instance,
                    });
                }
            }
            Event::Text(t) if path.len() == 3 => text.push_str(&t.decode().ok()?),
            Event::GeneralRef(r) if path.len() == 3 => {
                let name = std::str::from_utf8(&r).ok()?;
                text.push_str(&quick_xml::escape::unescape(&format!("&{name};")).ok()?);
            }
            Event::CData(c) if path.len() == 3 => text.push_str(std::str::from_utf8(&c).ok()?),
            Event::Eof => return Some(entries),
            _ => {}
        }
    }
}

/// A copy's source's SSE-C key (`x-amz-copy-source-server-side-encryption-customer-*`),
/// as the headers that read the source.
pub(in crate::request) fn source_key(req: &pingora::http::RequestHeader) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &req.headers {
        let key = name
            .as_str()
            .strip_prefix("x-amz-copy-source-server-side-encryption-customer-");
        if let Some(rest) = key {
            let name = format!("x-amz-server-side-encryption-customer-{rest}");
            if let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) {
                headers.insert(name, value.clone());
            }
        }
    }
    headers
}

/// Whether a copy names its own target as source (the same key, the current object) under
/// the COPY directive without changing what S3 counts as a change (storage class,
/// encryption).
fn onto_itself(
    at: At<'_>,
    source: &crate::request::sign::CopySource,
    req: &pingora::http::RequestHeader,
) -> bool {
    let changes = req.headers.keys().any(|n| {
        n.as_str() == "x-amz-storage-class"
            || n.as_str()
                .starts_with("x-amz-server-side-encryption-customer-")
    });
    source.is(at.target) && source.version_id.is_none() && !changes
}

/// The metadata a copy's source answered (`head`), on the copy's request, which is then
/// pinned to that source — or, where the HEAD found none, to no object at all.
fn take_metadata(req: &mut pingora::http::RequestHeader, head: &ResponseHeader) {
    let pin = "x-amz-copy-source-if-match";
    let etag = head.headers.get("etag").filter(|_| head.status == 200);
    let Some(etag) = etag else {
        req.insert_header(pin, "\"hcp-gateway-no-source\"")
            .expect("static");
        return;
    };
    req.insert_header(pin, etag.clone()).expect("valid header");
    for (name, value) in &head.headers {
        let name = match name.as_str().strip_prefix("x-obs-meta-") {
            Some(rest) => format!("x-amz-meta-{rest}"),
            None => name.as_str().to_string(),
        };
        let directive = crate::request::validate::backend_directive(&name);
        if crate::request::sign::metadata_attribute(&name) && !directive {
            req.append_header(name, value.clone())
                .expect("a header the backend sent");
        }
    }
}

impl Gateway {
    /// A copy that keeps its source's metadata (`x-amz-metadata-directive` COPY, S3's default)
    /// would keep the source's owner entry too: it is sent as `REPLACE` with the source's
    /// metadata, read by a HEAD of the source (with the client's SSE-C key for it). The
    /// client's conditions on the source are answered here against that HEAD (412), and the
    /// copy is pinned to what was read (`x-amz-copy-source-if-match`); a source the HEAD did
    /// not find is pinned to no object at all, so the copy's own answer says what is missing.
    /// The client's attribute headers, which S3 ignores under COPY, are dropped. A copy of an
    /// object onto itself under COPY is S3's 400 unless it changes the storage class or the
    /// encryption (HCP's `InvalidArgument`).
    pub(in crate::request) async fn carry_source_metadata(
        &self,
        req: &mut pingora::http::RequestHeader,
        at: At<'_>,
        current_source: bool,
    ) -> Result<(), HcpError> {
        let replace = req
            .headers
            .get("x-amz-metadata-directive")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::request::validate::metadata_directive)
            == Some("REPLACE");
        let Some(mut source) = req
            .headers
            .get("x-amz-copy-source")
            .and_then(|v| crate::request::sign::CopySource::parse(v.as_bytes()))
        else {
            return Ok(());
        };
        if replace {
            return Ok(());
        }
        if current_source {
            source.version_id = None;
        }
        if onto_itself(at, &source, req) {
            return Err(HcpError::new(HcpCode::InvalidArgument).with_message(
                "This copy request is illegal because it is trying to copy an object to itself \
                 without changing the object's metadata, storage class, website redirect \
                 location or encryption attributes.",
            ));
        }
        let head = self
            .head_of_source(req, at, &source)
            .await?
            .filter(|h| !h.status.is_server_error())
            .ok_or_else(|| {
                HcpError::new(HcpCode::ServiceUnavailable)
                    .with_cause("HEAD of a copy's source: the backend did not answer")
            })?;
        let conditions = "x-amz-copy-source-if-";
        if head.status == 200
            && rewrite::precondition_with(req, "x-amz-copy-source-", &head)
                != rewrite::Precondition::Holds
        {
            return Err(HcpError::new(HcpCode::PreconditionFailed));
        }
        let dropped: Vec<http::HeaderName> = req
            .headers
            .keys()
            .filter(|n| {
                crate::request::sign::metadata_attribute(n.as_str())
                    || n.as_str().starts_with(conditions)
            })
            .cloned()
            .collect();
        for name in dropped {
            req.remove_header(&name);
        }
        req.insert_header("x-amz-metadata-directive", "REPLACE")
            .expect("static");
        take_metadata(req, &head);
        Ok(())
    }

    /// HCP's `bucket-owner-read` and `bucket-owner-full-control` (manual 856–858): the
    /// object's owner keeps full control and the bucket's owner is granted read or full
    /// control — a grant to a user, kept by the gateway (`request::acls`); the backend is
    /// asked for `private`. No grant where the bucket's owner owns the object (or the bucket
    /// has none). `None` where the request sets no such ACL, and for a multipart upload (its
    /// bucket's owner has full control of it all the same).
    pub(in crate::request) async fn bucket_owner_grant(
        &self,
        req: &mut pingora::http::RequestHeader,
        (at, op, params): (At<'_>, Operation, &Params),
    ) -> Result<Option<crate::request::acls::UserGrant>, HcpError> {
        let canned = req
            .headers
            .get("x-amz-acl")
            .map(|v| v.as_bytes().trim_ascii());
        let permission = match canned {
            Some(b"bucket-owner-read") => "READ",
            Some(b"bucket-owner-full-control") => "FULL_CONTROL",
            _ => return Ok(None),
        };
        let unavailable = |cause: String| {
            HcpError::new(HcpCode::ServiceUnavailable)
                .with_message("The bucket's owner could not be read; try again.")
                .with_cause(cause)
        };
        let object_owner = match op {
            Operation::PutObject | Operation::CopyObject => params.effects.object_owner.clone(),
            Operation::PutObjectAcl => {
                let mut head_params = Params::default();
                if let Some(v) = params.get("versionId") {
                    head_params.set("versionId", v);
                }
                let head = self
                    .backend_call(Operation::HeadObject, head_params, at.target, at.route)
                    .await;
                match head {
                    Some((h, _)) if h.status == 200 => recorded_in(&h),
                    // (No object, or one the gateway cannot HEAD — encrypted with a
                    // customer's key: the canned ACL goes to the backend as it is; the
                    // bucket's owner has full control of the object anyway.)
                    Some((h, _)) if matches!(h.status.as_u16(), 400 | 403 | 404 | 405) => {
                        return Ok(None)
                    }
                    other => {
                        let status = other.map(|(h, _)| h.status.as_u16());
                        let cause = format!("HEAD of the object answered {status:?}");
                        return Err(unavailable(cause));
                    }
                }
            }
            _ => return Ok(None),
        };
        let bucket_owner = self.bucket_owner(at, false).await.map_err(unavailable)?;
        req.insert_header("x-amz-acl", "private").expect("static");
        let (Some(bucket_owner), Some(object_owner)) = (bucket_owner, object_owner) else {
            return Ok(None);
        };
        if bucket_owner.id == object_owner {
            return Ok(None);
        }
        Ok(Some(crate::request::acls::UserGrant {
            grantee: bucket_owner,
            permission: permission.to_string(),
        }))
    }

    /// The owner an answer names for the object `head` describes: its recorded owner, or
    /// for an object stored before owners were kept, `bucket_owner`.
    pub(in crate::request) fn object_owner(
        &self,
        head: &ResponseHeader,
        bucket_owner: &Owner,
    ) -> Owner {
        match recorded_in(head) {
            Some(mark) => owner_named(&self.users.load(), &mark),
            None => bucket_owner.clone(),
        }
    }

    /// Remembers the owner of an instance a write just stored (a listing of it then reads
    /// nothing).
    pub(in crate::request) fn remember_written_owner(
        &self,
        at: At<'_>,
        written: &ResponseHeader,
        etag: Option<&str>,
        mark: &str,
    ) {
        let Some(key) = at.target.key() else {
            return;
        };
        for instance in written_instances(written, etag) {
            self.listed_owners.insert(at, &key, &instance, mark);
        }
    }

    /// A new object's owner, remembered once its write succeeded (`etag`: the ETag it
    /// answered).
    pub(in crate::request) fn owner_written(
        &self,
        call: &crate::request::forward::Call<'_>,
        upstream: &ResponseHeader,
        etag: Option<&str>,
    ) {
        let Some(mark) = call.params.effects.object_owner.as_deref() else {
            return;
        };
        if matches!(call.op, Operation::PutObject | Operation::CopyObject) {
            let at = At {
                target: call.target,
                route: call.route,
            };
            self.remember_written_owner(at, upstream, etag, mark);
        }
    }

    /// The owners of a listing's objects, where the namespace keeps owners and the listing
    /// names them (ListObjects, ListObjectVersions, ListObjectsV2 with `fetch-owner`).
    pub(in crate::request) async fn listing_owners(
        &self,
        call: &crate::request::forward::Call<'_>,
        upstream: &ResponseHeader,
        body: &[u8],
    ) -> Option<EntryOwners> {
        call.guards.owners.as_ref()?;
        let names_owners = match call.op {
            Operation::ListObjects | Operation::ListObjectVersions => true,
            Operation::ListObjectsV2 => call.params.get("fetch-owner") == Some("true"),
            _ => false,
        };
        if !names_owners || upstream.status != 200 {
            return None;
        }
        let entries = listed_entries(body)?;
        let at = At {
            target: call.target,
            route: call.route,
        };
        let url_encoded = call.params.get("encoding-type") == Some("url");
        // Boxed: most answers pass here without it.
        let owners = Box::pin(self.entry_owners(at, &entries, url_encoded)).await;
        Some(EntryOwners { entries, owners })
    }

    /// The owners of a listing's entries: remembered, or read by a HEAD of each (16 at a
    /// time, for at most [`LISTING_BUDGET`] in all); an entry whose HEAD fails, names no
    /// owner or was not read in time is left to the bucket's owner. `url_encoded`: the
    /// listing's keys are URL-encoded (`encoding-type=url`).
    pub(in crate::request) async fn entry_owners(
        &self,
        at: At<'_>,
        entries: &[Listed],
        url_encoded: bool,
    ) -> Vec<Option<Owner>> {
        use futures_util::stream::{self, StreamExt};
        // Remembered owners first, without a task each; the rest by HEAD.
        let mut marks: Vec<Option<Arc<str>>> = vec![None; entries.len()];
        let mut unknown = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            if entry.key.is_empty() || entry.instance.is_empty() {
                continue;
            }
            let key = listed_key(&entry.key, url_encoded);
            match self.listed_owners.get(at, &key, &entry.instance) {
                Some(mark) => marks[i] = Some(mark),
                None => unknown.push((i, key)),
            }
        }
        if !unknown.is_empty() {
            let read = stream::iter(unknown)
                .map(|(i, key)| async move {
                    (i, self.head_owner(at, &key, &entries[i].instance).await)
                })
                .buffer_unordered(16)
                .take_until(tokio::time::sleep(LISTING_BUDGET))
                .collect::<Vec<_>>()
                .await;
            for (i, mark) in read {
                marks[i] = mark;
            }
        }
        // (A listing's objects have few owners: each is named once.)
        let users = self.users.load();
        let mut named: std::collections::HashMap<Arc<str>, Owner> = Default::default();
        marks
            .into_iter()
            .map(|mark| {
                let mark = mark.filter(|m| !m.is_empty())?;
                let owner = named
                    .entry(mark.clone())
                    .or_insert_with(|| owner_named(&users, &mark));
                Some(owner.clone())
            })
            .collect()
    }

    /// One listed object instance's owner, read by a HEAD of it (checked to be the instance
    /// listed) and remembered — as none (`""`) where the backend refused the HEAD (an object
    /// gone meanwhile, one encrypted with a customer's key), so that it is not asked again.
    async fn head_owner(&self, at: At<'_>, key: &[u8], instance: &str) -> Option<Arc<str>> {
        let target = at.target.with_key(key);
        let object = At {
            target: &target,
            route: at.route,
        };
        let mut params = Params::default();
        if let Some(v) = instance.strip_prefix("v:") {
            params.set("versionId", v);
        } else if instance.starts_with("n:") {
            params.set("versionId", "null");
        }
        let heads = self.listed_owners.heads_of(&at.route.tenant.name);
        let _turn = heads.acquire().await.ok()?;
        let (head, _) = self
            .backend_call(Operation::HeadObject, params, &target, at.route)
            .await?;
        // (Gone, or not for the gateway to HEAD — SSE-C: remembered; throttled: not.)
        if matches!(head.status.as_u16(), 400 | 403 | 404 | 405) {
            self.listed_owners.insert(object, key, instance, "");
            return None;
        }
        if head.status != 200 {
            return None;
        }
        if let Some(listed) = instance.strip_prefix("e:").or(instance.strip_prefix("n:")) {
            let etag = head.headers.get("etag").and_then(|v| v.to_str().ok());
            if !etag.is_some_and(|e| crate::etag::listed(listed, e)) {
                return None;
            }
        }
        // (An object stored before owners were kept is remembered as such: "".)
        let mark: Arc<str> = Arc::from(recorded_in(&head).unwrap_or_default());
        self.listed_owners.insert(object, key, instance, &mark);
        Some(mark)
    }
}

/// The instances a write made, as listings name them: its version (S3's or OBS's header), and
/// by its ETag the current object and, where no version was made, the `null` version.
fn written_instances(written: &ResponseHeader, etag: Option<&str>) -> Vec<String> {
    let version = crate::request::acls::version_header(written)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && *v != "null");
    let mut instances = Vec::with_capacity(3);
    if let Some(v) = version {
        instances.push(format!("v:{v}"));
    }
    if let Some(e) = etag {
        instances.push(format!("e:{e}"));
        if version.is_none() {
            instances.push(format!("n:{e}"));
        }
    }
    instances
}

/// How long a listing may wait for its objects' owners (the rest name the bucket's owner).
pub const LISTING_BUDGET: Duration = Duration::from_secs(5);

/// A listed key as the object's key: decoded where the listing URL-encodes its keys
/// (`encoding-type=url`: `%XX`, and `+` for a space).
pub(in crate::request) fn listed_key(key: &str, url_encoded: bool) -> Vec<u8> {
    if !url_encoded {
        return key.as_bytes().to_vec();
    }
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode(spaced.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One tenant's listings holding every HEAD they may have leave another tenant's theirs
    /// (one semaphore for all made a busy tenant's listings name the bucket's owner for
    /// another's objects, their HEADs queued past the listing's budget).
    #[test]
    fn one_tenant_s_listings_leave_another_s_heads() {
        let owners = ListedOwners::default();
        let all = owners
            .heads_of("a")
            .try_acquire_many_owned(LISTING_HEADS as u32);
        let _all = all.expect("all of a's");
        assert!(owners.heads_of("a").try_acquire().is_err());
        assert!(owners.heads_of("b").try_acquire().is_ok());
    }

    #[test]
    fn the_gateways_metadata_is_reserved() {
        assert!(reserved(OWNER_METADATA));
        assert!(reserved("x-amz-meta-hcp-gateway-anything"));
        assert!(reserved("x-obs-meta-hcp-gateway-owner"));
        assert!(!reserved("x-amz-meta-hcp-gateway"));
        assert!(!reserved("x-amz-meta-owner"));
        assert!(reserved("x-amz-meta-hcp_gateway_owner"));
        assert!(reserved("X-Amz-Meta-HCP-Gateway-Owner"));
        assert!(reserved("x-amz-meta-hcp!gateway*owner"));
        assert!(stores_object(Operation::CopyObject));
        assert!(!stores_object(Operation::UploadPart));
    }

    #[test]
    fn owners_are_read_from_the_head_and_named_as_users() {
        let mut head = ResponseHeader::build(200, None).unwrap();
        assert_eq!(recorded_in(&head), None);
        let users = UserStore::default();
        head.insert_header(OWNER_METADATA, "nobody").unwrap();
        assert_eq!(
            owner_named(&users, &recorded_in(&head).unwrap()),
            Owner::nobody()
        );
        // An id no user has any more is shown as it is.
        let gone = owner_named(&users, "73140d54-c3e1-eaab-f1a8-9c37b5fd21da");
        assert_eq!(gone.name, gone.id);
        // A user is named as everywhere else (by user name; by access key without one).
        use crate::request::authenticate::User;
        let named = User::new(
            Some("lgreen".into()),
            "bGdyZWVu".into(),
            "s".into(),
            true,
            vec![],
        );
        let keyed = User::new(None, "a2V5ZWQ=".into(), "s".into(), true, vec![]);
        let (named_owner, keyed_owner) = (Owner::of(&named), Owner::of(&keyed));
        let users = UserStore::new(vec![named, keyed]);
        assert_eq!(owner_named(&users, &named_owner.id), named_owner);
        assert_eq!(owner_named(&users, &keyed_owner.id), keyed_owner);
    }

    /// A write's version is read from S3's header or OBS's; without one it made the `null`
    /// version (OBS's versioned write was remembered as the `null` version: the listing named
    /// its writer for the older null version's).
    #[test]
    fn a_write_is_remembered_as_the_instances_it_made() {
        let answer = |name: &str, value: &str| {
            let mut h = ResponseHeader::build(200, None).unwrap();
            if !name.is_empty() {
                h.insert_header(name.to_string(), value).unwrap();
            }
            h
        };
        let etag = Some("\"e\"");
        for name in ["x-amz-version-id", "x-obs-version-id"] {
            let made = written_instances(&answer(name, "v1"), etag);
            assert_eq!(made, ["v:v1", "e:\"e\""], "{name}");
            let made = written_instances(&answer(name, "null"), etag);
            assert_eq!(made, ["e:\"e\"", "n:\"e\""], "{name}");
        }
        let made = written_instances(&answer("", ""), etag);
        assert_eq!(made, ["e:\"e\"", "n:\"e\""]);
    }

    #[test]
    fn listings_name_their_entries_by_version_or_etag() {
        let doc = br#"<ListVersionsResult><Name>b</Name>
            <Version><Key>a&amp;b</Key><VersionId>v1</VersionId><ETag>"e1"</ETag><Owner><ID>x</ID></Owner></Version>
            <Version><Key>c</Key><VersionId>null</VersionId><ETag>"e2"</ETag></Version>
            <DeleteMarker><Key>d</Key><VersionId>v3</VersionId></DeleteMarker>
            </ListVersionsResult>"#;
        let entries = listed_entries(doc).unwrap();
        assert_eq!(
            entries,
            [
                Listed {
                    key: "a&b".into(),
                    instance: "v:v1".into()
                },
                Listed {
                    key: "c".into(),
                    instance: "n:\"e2\"".into()
                },
            ]
        );
        let doc = br#"<ListBucketResult><Contents><Key>k</Key><ETag>&quot;e&quot;</ETag></Contents></ListBucketResult>"#;
        assert_eq!(listed_entries(doc).unwrap()[0].instance, "e:\"e\"");
    }
}

//! HCP's ACLs as access (manual, "Access control lists", "ACL permissions", "ACL grantees"):
//! a request the caller's data access permissions do not allow is still allowed when an ACL
//! grants it — the bucket's ACL (for the bucket and every object in it) or the object's ACL
//! (for that object) — or when the caller owns the bucket (its owner has full control).
//!
//! A backend keeps the grants to groups (all users, authenticated users) in its own ACLs, but
//! not grants to individual HCP users: every gateway user reaches it as the tenant's one
//! account. Where a tenant keeps records (`records_bucket`), the gateway keeps those grants
//! there (`request::records`), one record per ACL, written whole:
//!
//! - `acls/<backend bucket>`: the bucket ACL's grants to users;
//! - `acls/<backend bucket>/<digest>`: an object ACL's grants to users, where the digest names
//!   the key and the object's instance (its version id, or for an object without one its
//!   ETag), so that an object stored again under the same name does not inherit the grants of
//!   the one before — unless, without versions, it holds the very same bytes. (Not
//!   Last-Modified: Ceph RGW moves it when an ACL changes.)
//!
//! Only a request the permissions do not allow pays for this: the bucket's owner and ACL, and
//! for an object operation a HEAD of the object and its ACL (all read through a short cache,
//! [`ACL_TTL`], that this replica's changes invalidate). A read allowed by an object's ACL is
//! sent with `If-Match` on the ETag that was judged, so that it cannot read a newer object.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use pingora::http::ResponseHeader;

use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::authorize::Permission;
use crate::request::owners::Owner;
use crate::request::records::Records;
use crate::request::validate::probes::At;
use crate::request::*;
use forward::Call;

/// How long an ACL read from the backend and the records is trusted (another replica's
/// changes are seen after at most this long; this replica's at once).
pub const ACL_TTL: Duration = Duration::from_secs(10);

/// What an owner holds, and the most an ACL grants: HCP's full control.
pub const FULL_CONTROL: &[Permission] = &[
    Permission::Read,
    Permission::Write,
    Permission::Delete,
    Permission::ReadAcl,
    Permission::WriteAcl,
];

/// The data access permissions an ACL permission grants (HCP: read is browse and read, write
/// is write and delete, full control all five).
pub fn granted_by(acl_permission: &str) -> &'static [Permission] {
    match acl_permission {
        "READ" => &FULL_CONTROL[..1],
        "WRITE" => &FULL_CONTROL[1..3],
        "READ_ACP" => &FULL_CONTROL[3..4],
        "WRITE_ACP" => &FULL_CONTROL[4..5],
        "FULL_CONTROL" => FULL_CONTROL,
        _ => &[],
    }
}

/// Operations that set an ACL (their headers, or an ACL body).
pub fn sets_acl(op: Operation) -> bool {
    may_grant_to_users(op) || matches!(op, Operation::CreateMultipartUpload | Operation::PostObject)
}

/// HCP: "When adding an ACL to a bucket or object, you can grant only the permissions you
/// already have" — every data access permission the ACL permissions in `granted` stand for
/// must be `held` (403 otherwise).
pub fn check_grantable(granted: &[&str], held: &[Permission]) -> Result<(), HcpError> {
    for acl_permission in granted {
        if let Some(p) = granted_by(acl_permission)
            .iter()
            .find(|p| !held.contains(p))
        {
            return Err(authorize::denied().with_message(format!(
                "An ACL can grant only what its author holds: {acl_permission} needs the {} \
                 permission.",
                p.name()
            )));
        }
    }
    Ok(())
}

/// What the ACLs judged for a request the permissions did not allow established.
#[derive(Debug, Default)]
pub struct Judged {
    /// The ETag of the object whose ACL allowed a read (sent as `If-Match`).
    pub etag: Option<String>,
    /// The identity ([`identity_of`]) of the object whose owner or ACL allowed the request,
    /// whatever it is (a PUT `?acl` changes only that object).
    pub object: Option<String>,
    /// The ETag of a copy's source whose ACL allowed reading it (the copy is sent with
    /// `x-amz-copy-source-if-match` on it).
    pub source_etag: Option<String>,
    /// What ownership and the ACLs read give the caller (an ACL it sets may grant these).
    pub held: Vec<Permission>,
    /// A multi-object delete the bucket does not allow: each object it names is judged by its
    /// own owner and ACL (`retain::deletes`).
    pub each_object: bool,
}

/// Operations an object's ACL can allow (the others act on the bucket, or need permissions
/// no ACL grants).
pub fn object_acl_applies(op: Operation) -> bool {
    matches!(
        op,
        Operation::GetObject
            | Operation::HeadObject
            | Operation::GetObjectAcl
            | Operation::PutObjectAcl
            | Operation::DeleteObject
    )
}

/// Whether `op` with `params` acts on one object its owner and ACL may allow: those of
/// [`object_acl_applies`], and a metadata change — its object's owner holds write and write
/// ACL on it (manual 779), an ACL on the edit included.
fn acts_on_its_object(op: Operation, params: &Params) -> bool {
    object_acl_applies(op) || (op == Operation::CopyObject && params.effects.metadata_edit)
}

/// Operations whose ACL headers may grant to individual users where the tenant keeps them (a
/// multipart upload's ACL would have to wait for its completion: not kept).
pub fn may_grant_to_users(op: Operation) -> bool {
    matches!(
        op,
        Operation::PutObject
            | Operation::CopyObject
            | Operation::CreateBucket
            | Operation::PutObjectAcl
            | Operation::PutBucketAcl
    )
}

/// What a request's permissions lack, for ACLs or ownership to grant: permissions on its
/// target, and reading its copy source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needed {
    pub on_target: Vec<Permission>,
    pub source_read: bool,
    /// Judged on the bucket alone (its owner and ACL), never an object's: HCP's privileged
    /// delete needs "delete or purge permission for the bucket".
    pub bucket_only: bool,
}

impl Needed {
    pub fn is_empty(&self) -> bool {
        self.on_target.is_empty() && !self.source_read
    }
}

/// One grant of an ACL permission (`READ`, `WRITE`, `READ_ACP`, `WRITE_ACP`, `FULL_CONTROL`)
/// to an HCP user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserGrant {
    pub grantee: Owner,
    pub permission: String,
}

/// A record of an ACL's grants to users.
#[derive(serde::Serialize, serde::Deserialize)]
struct AclRecord {
    bucket: String,
    /// The object's key (lossy UTF-8: for people reading the records; the name holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance: Option<String>,
    grants: Vec<UserGrant>,
}

/// What one ACL grants, as the gateway reads it: the backend's grants to groups and the
/// recorded grants to users.
#[derive(Debug, Default, Clone)]
pub struct Acl {
    pub users: Vec<UserGrant>,
    /// ACL permissions granted to all users (anonymous callers too).
    pub all_users: Vec<String>,
    /// ACL permissions granted to every authenticated user.
    pub authenticated: Vec<String>,
}

impl Acl {
    /// Its weight in the cache: one, and one per grant.
    pub fn weight(&self) -> u32 {
        let grants = self.users.len() + self.all_users.len() + self.authenticated.len();
        u32::try_from(1 + grants).unwrap_or(u32::MAX)
    }

    /// The data access permissions this ACL grants `caller` (`None`: anonymous).
    fn grants_to<'a>(&'a self, caller: Option<&'a Owner>) -> impl Iterator<Item = Permission> + 'a {
        let own = self
            .users
            .iter()
            .filter(move |g| caller.is_some_and(|c| c.id == g.grantee.id))
            .map(|g| g.permission.as_str());
        let groups = self
            .all_users
            .iter()
            .chain(self.authenticated.iter().filter(move |_| caller.is_some()))
            .map(String::as_str);
        own.chain(groups)
            .flat_map(|p| granted_by(p).iter().copied())
    }
}

/// Whether the ACLs together grant `caller` every permission in `needed`.
pub fn allows(acls: &[&Acl], caller: Option<&Owner>, needed: &[Permission]) -> bool {
    let held: Vec<Permission> = acls.iter().flat_map(|a| a.grants_to(caller)).collect();
    needed.iter().all(|p| held.contains(p))
}

/// An object's instance: `v:` and its version id where the backend keeps one, else `e:` and
/// its ETag; `None` where the answer names neither.
pub fn instance_of(head: &ResponseHeader) -> Option<String> {
    match version_of(head) {
        Some(version) => Some(format!("v:{version}")),
        None => Some(format!("e:{}", head.headers.get("etag")?.to_str().ok()?)),
    }
}

/// What an object's owner or ACL allowing a request is tied to: its instance and its owner
/// entry (the same bytes stored again by someone else are another object).
pub fn identity_of(head: &ResponseHeader) -> Option<String> {
    let owner = crate::request::object_owners::recorded_in(head).unwrap_or_default();
    Some(format!("{} {owner}", instance_of(head)?))
}

/// Where the ACL of the object instance `head` describes is read: the backend's `GET ?acl`
/// parameters (its version, where it has one) and the record's name.
fn object_acl_source(at: At<'_>, head: &ResponseHeader) -> Result<(Params, String), String> {
    let instance = instance_of(head).ok_or("the object's HEAD names no instance")?;
    let backend_bucket = at.route.backend_bucket.as_deref().unwrap_or_default();
    let key = at.target.key().unwrap_or_default();
    let name = object_acl_record(backend_bucket, &key, &instance);
    Ok((version_params(head), name))
}

/// The parameters that name the version `head` describes, where it has one — S3's `null`
/// too: without it a `GET ?acl` reads the current version's, not the null version judged.
fn version_params(head: &ResponseHeader) -> Params {
    let mut params = Params::default();
    if let Some(v) = version_header(head).and_then(|v| v.to_str().ok()) {
        if !v.is_empty() {
            params.set("versionId", v);
        }
    }
    params
}

fn bucket_acl_record(backend_bucket: &str) -> String {
    format!("acls/{backend_bucket}")
}

fn object_acl_record(backend_bucket: &str, key: &[u8], instance: &str) -> String {
    // (The key's length first: no key and instance name another pair's record.)
    let mut named = format!("{}:", key.len()).into_bytes();
    named.extend_from_slice(key);
    named.extend_from_slice(instance.as_bytes());
    let digest = crate::sig::v4::sha256_hex(&named);
    format!("acls/{backend_bucket}/{digest}")
}

fn unavailable(cause: String) -> HcpError {
    HcpError::new(HcpCode::ServiceUnavailable)
        .with_message("The ACL could not be read or recorded; try again.")
        .with_cause(cause)
}

/// The ACL permissions a backend's `AccessControlPolicy` grants to all users and to
/// authenticated users.
fn group_grants(doc: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    let grants = crate::request::validate::acl::group_grants(doc)
        .map_err(|_| "the backend's ACL does not parse".to_string())?;
    let (mut all, mut authenticated) = (Vec::new(), Vec::new());
    for (uri, permission) in grants {
        match uri.as_str() {
            crate::request::validate::acl::ALL_USERS => all.push(permission),
            crate::request::validate::acl::AUTHENTICATED_USERS => authenticated.push(permission),
            _ => {}
        }
    }
    Ok((all, authenticated))
}

/// What a request that sets an ACL leaves to be recorded once the backend has done its part:
/// the grants to users (none: the record is removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclChange {
    pub grants: Vec<UserGrant>,
}

/// The grants to users `params`' ACL headers set, and `grant`.
pub fn with_grant(params: &Params, grant: UserGrant) -> AclChange {
    let change = params.effects.acl_change.as_ref();
    let mut grants = change.map(|c| c.grants.clone()).unwrap_or_default();
    grants.push(grant);
    AclChange { grants }
}

impl Gateway {
    /// Before anything is sent for a request the caller's permissions do not allow
    /// (`needed`): allowed if, on its target, the caller owns the bucket, or the bucket's ACL —
    /// and for an object operation, the object's — grants every permission lacked, and the
    /// copy source (where it is not readable by the permissions) is readable alike; otherwise
    /// 403. For a read allowed by the object's ACL, the ETag judged (sent as `If-Match`).
    pub(in crate::request) async fn check_acls(
        &self,
        (at, op, params): (At<'_>, Operation, &Params),
        req: &pingora::http::RequestHeader,
        caller: Option<&Owner>,
        needed: &Needed,
    ) -> Result<Judged, HcpError> {
        let mut source_etag = None;
        if needed.source_read {
            let source = req
                .headers
                .get("x-amz-copy-source")
                .and_then(|v| crate::request::sign::CopySource::parse(v.as_bytes()))
                .ok_or_else(authorize::denied)?;
            let version = source
                .version_id
                .clone()
                .filter(|_| !params.effects.current_source);
            let target = crate::request::validate::probes::source_target(at, &source);
            let route = crate::request::validate::probes::source_route(at, &target)?;
            let source_at = At {
                target: &target,
                route: &route,
            };
            let read = [Permission::Read];
            let source = self
                .judge(source_at, Some(version.as_deref()), caller, &read)
                .await?;
            // (What the source's ACLs give is not held on the target.)
            source_etag = source.etag;
        }
        if needed.on_target.is_empty() {
            return Ok(Judged {
                source_etag,
                ..Judged::default()
            });
        }
        let object = (acts_on_its_object(op, params) && !needed.bucket_only)
            .then(|| params.get("versionId"));
        let pinned = matches!(op, Operation::GetObject | Operation::HeadObject);
        // What it holds, a request that sets an ACL may grant (and makes lasting): judged on
        // the ACLs as they are now (`judge`), whatever it lacks — its grants to users (taken
        // out of its headers into `acl_change`), to groups, or a canned ACL.
        let grants_to_users = params
            .effects
            .acl_change
            .as_ref()
            .is_some_and(|c| !c.grants.is_empty());
        let acl_headers = || {
            crate::request::validate::acl::ACL_HEADERS
                .iter()
                .any(|h| req.headers.contains_key(*h))
        };
        let fresh = needed.on_target.contains(&Permission::WriteAcl)
            || (sets_acl(op) && (grants_to_users || acl_headers()));
        let judging = self.judge_reading(at, (object, fresh), caller, &needed.on_target);
        let mut judged = match judging.await {
            // HCP: a multi-object delete needs "delete permission for the bucket containing
            // the objects or for the objects themselves" — judged object by object for a user
            // of the tenant (an anonymous caller the bucket refuses is refused whole, its
            // connection closed: up to 1,000 objects' HEADs and ACLs are not its to ask for).
            Err(e)
                if op == Operation::DeleteObjects
                    && e.code == HcpCode::AccessDenied
                    && caller.is_some()
                    && !needed.bucket_only =>
            {
                return Ok(Judged {
                    each_object: true,
                    source_etag,
                    ..Judged::default()
                })
            }
            judged => judged?,
        };
        judged.etag = judged.etag.filter(|_| pinned);
        judged.source_etag = source_etag;
        Ok(judged)
    }

    /// HCP's rule for what the permissions lack (`needed`) on `at`: its bucket's owner, its
    /// bucket's ACL, and where `object` (its version, if one is named) its object's ACL; the
    /// ETag of the object judged, where its ACL was read. On the last seconds' reading of the
    /// ACLs: a request that sets an ACL is judged on them read now (`check_acls`,
    /// `check_granting`).
    pub(in crate::request) async fn judge(
        &self,
        at: At<'_>,
        object: Option<Option<&str>>,
        caller: Option<&Owner>,
        needed: &[Permission],
    ) -> Result<Judged, HcpError> {
        self.judge_reading(at, (object, false), caller, needed)
            .await
    }

    /// [`judge`](Self::judge), on the ACLs read now where `fresh`: a request that sets an ACL
    /// makes what the caller holds lasting (it may grant only that, and the new ACL replaces
    /// the old), never on a reading another replica's revocation may have made stale.
    async fn judge_reading(
        &self,
        at: At<'_>,
        (object, fresh): (Option<Option<&str>>, bool),
        caller: Option<&Owner>,
        needed: &[Permission],
    ) -> Result<Judged, HcpError> {
        let denied = || {
            authorize::denied()
                .with_message("Neither the permissions nor an ACL allow this request.")
        };
        // A bucket that is not there has no ACL: HCP's 404, before anything is kept of it
        // (whether a bucket exists is no secret: creating it would say 409).
        let Some(bucket) = self.bucket_acl(at, fresh).await.map_err(unavailable)? else {
            let name = at.target.bucket.as_deref().unwrap_or_default();
            return Err(HcpError::new(HcpCode::NoSuchBucket).with_bucket(name));
        };
        if let Some(c) = caller {
            // (Confirmed fresh: full control is not given on a reading another replica may
            // have made stale, by deleting the bucket and another user creating it again.)
            let owns = |owner: Option<Owner>| owner.is_some_and(|o| o.id == c.id);
            let cached = self.bucket_owner(at, false).await.map_err(unavailable)?;
            if owns(cached) && owns(self.bucket_owner(at, true).await.map_err(unavailable)?) {
                return Ok(Judged {
                    held: FULL_CONTROL.to_vec(),
                    ..Judged::default()
                });
            }
        }
        if allows(&[&bucket], caller, needed) {
            return Ok(Judged {
                held: bucket.grants_to(caller).collect(),
                ..Judged::default()
            });
        }
        let Some(version) = object.filter(|_| at.target.raw_key.is_some()) else {
            return Err(denied());
        };
        let Some(head) = self.object_instance(at, version).await? else {
            return Err(denied());
        };
        let etag = head.headers.get("etag").and_then(|v| v.to_str().ok());
        // The object's owner has full control of it (manual 779, 820).
        let mark = crate::request::object_owners::recorded_in(&head);
        if caller.is_some_and(|c| mark.as_deref() == Some(c.id.as_str())) {
            return Ok(Judged {
                etag: etag.map(str::to_string),
                object: identity_of(&head),
                held: FULL_CONTROL.to_vec(),
                ..Judged::default()
            });
        }
        let Some(read) = self
            .object_acl(at, &head, fresh)
            .await
            .map_err(unavailable)?
        else {
            return Err(denied());
        };
        if !allows(&[&bucket, &read.acl], caller, needed) {
            return Err(denied());
        }
        let object = self.remember_acl(read);
        Ok(Judged {
            etag: etag.map(str::to_string),
            object: identity_of(&head),
            source_etag: None,
            held: bucket
                .grants_to(caller)
                .chain(object.grants_to(caller))
                .collect(),
            each_object: false,
        })
    }

    /// The object's HEAD (`None`: there is none to judge — a 403 for the caller, who may not
    /// learn whether it exists); a backend that cannot answer is a 503.
    pub(in crate::request) async fn object_instance(
        &self,
        at: At<'_>,
        version: Option<&str>,
    ) -> Result<Option<ResponseHeader>, HcpError> {
        let mut params = Params::default();
        if let Some(v) = version {
            params.set("versionId", v);
        }
        let head = self
            .backend_call(Operation::HeadObject, params, at.target, at.route)
            .await;
        match head {
            Some((mut h, _)) if h.status == 200 => {
                // (A backend that keeps no id for a null version names none: the version
                // judged is the one asked for, which `version_params` then names.)
                if version == Some("null") && version_header(&h).is_none() {
                    h.insert_header("x-amz-version-id", "null")
                        .map_err(|_| unavailable("the version's header".into()))?;
                }
                Ok(Some(h))
            }
            Some((h, _)) if h.status.is_client_error() => Ok(None),
            other => Err(unavailable(format!(
                "HEAD of the object answered {:?}",
                other.map(|(h, _)| h.status.as_u16())
            ))),
        }
    }

    /// The bucket's ACL: the backend's group grants and the recorded user grants (`None`: the
    /// bucket is not there). Kept in the cache: there are only as many as buckets.
    pub(in crate::request) async fn bucket_acl(
        &self,
        at: At<'_>,
        fresh: bool,
    ) -> Result<Option<Arc<Acl>>, String> {
        let backend_bucket = at.route.backend_bucket.as_deref().unwrap_or_default();
        let name = bucket_acl_record(backend_bucket);
        let bucket = Target {
            raw_key: None,
            ..at.target.clone()
        };
        let read = self
            .acl_of(at, &bucket, (Params::default(), name), fresh)
            .await?;
        Ok(read.map(|r| self.remember_acl(r)))
    }

    /// The ACL of the object instance `head` describes (its version's, where it has one), not
    /// yet kept in the cache: a request it refuses leaves nothing there.
    async fn object_acl(
        &self,
        at: At<'_>,
        head: &ResponseHeader,
        fresh: bool,
    ) -> Result<Option<AclRead>, String> {
        let source = object_acl_source(at, head)?;
        self.acl_of(at, at.target, source, fresh).await
    }

    /// One ACL, from the cache (unless `fresh` is asked) or read: the backend's (`GET ?acl` of
    /// `target`, with `params`) and the record `name`. `None` where the backend has no such
    /// bucket or object.
    async fn acl_of(
        &self,
        at: At<'_>,
        target: &Target,
        (params, name): (Params, String),
        fresh: bool,
    ) -> Result<Option<AclRead>, String> {
        let cache_key = format!("{}\n{name}", at.route.backend.name);
        if let Some(known) = self.acls.get(&cache_key).filter(|_| !fresh) {
            self.metrics.cache_lookup("acl", true);
            return Ok(Some(AclRead {
                acl: known,
                fresh: None,
            }));
        }
        self.metrics.cache_lookup("acl", false);
        let read = self.read_acl(at, target, params, name).await?;
        Ok(read.map(|(acl, generation)| AclRead {
            acl,
            fresh: Some((cache_key, generation)),
        }))
    }

    /// One ACL as the backend and the records have it now (never from the cache), with the
    /// count of ACL changes it was read after (a change made while it is read makes the
    /// reading too old to keep). `None` where the backend has no such bucket or object.
    async fn read_acl(
        &self,
        at: At<'_>,
        target: &Target,
        params: Params,
        name: String,
    ) -> Result<Option<(Arc<Acl>, u64)>, String> {
        let generation = self.acl_changes.load(Ordering::Acquire);
        let records = Records::of_tenant(at).ok_or("the namespace keeps no records")?;
        let op = if target.raw_key.is_some() {
            Operation::GetObjectAcl
        } else {
            Operation::GetBucketAcl
        };
        let params = params.with("acl", "");
        let (backend, recorded) = tokio::join!(
            self.backend_call(op, params, target, at.route),
            self.get_record(&records, name)
        );
        let (all_users, authenticated) = match backend {
            Some((h, body)) if h.status == 200 => group_grants(&body)?,
            Some((h, _)) if h.status == 404 => return Ok(None),
            other => {
                return Err(format!(
                    "reading the backend's ACL: it answered {:?}",
                    other.map(|(h, _)| h.status.as_u16())
                ))
            }
        };
        let users = match recorded? {
            Some(body) => {
                let record: AclRecord = serde_json::from_slice(&body)
                    .map_err(|e| format!("an ACL record does not parse: {e}"))?;
                record.grants
            }
            None => Vec::new(),
        };
        let acl = Arc::new(Acl {
            users,
            all_users,
            authenticated,
        });
        Ok(Some((acl, generation)))
    }

    /// Keeps an ACL just read in the cache, unless an ACL changed through this replica while
    /// it was read.
    fn remember_acl(&self, read: AclRead) -> Arc<Acl> {
        if let Some((key, generation)) = read.fresh {
            if self.acl_changes.load(Ordering::Acquire) == generation {
                self.acls.insert(key, read.acl.clone());
            }
        }
        read.acl
    }

    /// Forgets the cached ACL `name` of `at`'s backend, and any reading under way.
    fn forget_acl(&self, at: At<'_>, name: &str) {
        self.acl_changes.fetch_add(1, Ordering::AcqRel);
        self.acls
            .invalidate(&format!("{}\n{name}", at.route.backend.name));
    }

    /// The recorded grants to users of the ACL a GET `?acl` answers (shown with the backend's
    /// own grants).
    /// (`object`: an object's HEAD, read once for the request's guards.)
    pub(in crate::request) async fn shown_user_grants(
        &self,
        call: &Call<'_>,
        object: Option<&ResponseHeader>,
    ) -> Result<Vec<UserGrant>, HcpError> {
        let at = At {
            target: call.target,
            route: call.route,
        };
        let acl = match call.op {
            Operation::GetBucketAcl => self.bucket_acl(at, false).await.map_err(unavailable)?,
            Operation::GetObjectAcl => {
                let Some(head) = object else {
                    return Ok(Vec::new());
                };
                let read = self
                    .object_acl(at, head, false)
                    .await
                    .map_err(unavailable)?;
                read.map(|r| self.remember_acl(r))
            }
            _ => return Ok(Vec::new()),
        };
        // (Where there is none, the backend answers the GET ?acl itself.)
        Ok(acl.map(|a| a.users.clone()).unwrap_or_default())
    }

    /// Before an ACL changes, where the tenant keeps records: the record of the grants to
    /// users it replaces (a new bucket's: one a deleted bucket of that name may have left), and
    /// for an object the instance whose ACL changes. The record is removed once the request is
    /// checked whole, just before it is sent ([`Gateway::remove_replaced_acl`]).
    pub(in crate::request) async fn acl_change_target(
        &self,
        call: &Call<'_>,
        object: Option<&ResponseHeader>,
    ) -> Result<Option<(String, Option<String>)>, HcpError> {
        let changes = [
            Operation::CreateBucket,
            Operation::PutBucketAcl,
            Operation::PutObjectAcl,
        ];
        if !changes.contains(&call.op) {
            return Ok(None);
        }
        let at = At {
            target: call.target,
            route: call.route,
        };
        if Records::of_tenant(at).is_none() {
            return Ok(None);
        }
        let backend_bucket = at.route.backend_bucket.as_deref().unwrap_or_default();
        let (name, instance) = match call.op {
            Operation::CreateBucket | Operation::PutBucketAcl => {
                (bucket_acl_record(backend_bucket), None)
            }
            Operation::PutObjectAcl => {
                let Some(head) = object else {
                    // (No object to HEAD: the backend answers; nothing is recorded.)
                    return Ok(None);
                };
                // (Allowed by the object's owner or ACL: only that object's ACL changes.)
                if call.judged_object.is_some() && call.judged_object != identity_of(head) {
                    return Err(object_changed());
                }
                let instance = instance_of(head)
                    .ok_or_else(|| unavailable("the object's HEAD names no instance".into()))?;
                let key = at.target.key().unwrap_or_default();
                let name = object_acl_record(backend_bucket, &key, &instance);
                (name, Some(instance))
            }
            _ => return Ok(None),
        };
        Ok(Some((name, instance)))
    }

    /// A deleted bucket's objects' records, removed (best effort: a bucket created again
    /// under the name must not find them — an object there with the same bytes would be the
    /// same instance). At most 10,000; what is left is logged.
    async fn forget_object_acls(&self, records: &Records<'_>, bucket_record: &str) {
        use futures_util::stream::{self, StreamExt};
        let prefix = format!("{bucket_record}/");
        let names = match self.list_records(records, &prefix, 10_000).await {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(records = %prefix, "a deleted bucket's ACL records: {e}");
                return;
            }
        };
        let failed = stream::iter(names)
            .map(|name| self.delete_record(records, name))
            .buffer_unordered(16)
            .filter(|r| std::future::ready(r.is_err()))
            .count()
            .await;
        if failed > 0 {
            tracing::warn!(records = %prefix, failed, "a deleted bucket's ACL records stay");
        }
    }

    /// Just before an ACL change is sent, its body read: a change allowed by the object's own
    /// owner or ACL (`judged_object`) is sent only while the object is still the one judged —
    /// the body may have taken its time, and another user may have replaced the object
    /// meanwhile (an ACL change is one the backend takes unconditionally).
    pub(in crate::request) async fn still_the_object_judged(
        &self,
        call: &Call<'_>,
    ) -> Result<(), HcpError> {
        let Some(judged) = call.judged_object.as_deref() else {
            return Ok(());
        };
        if call.op != Operation::PutObjectAcl {
            return Ok(());
        }
        let at = At {
            target: call.target,
            route: call.route,
        };
        let head = self
            .object_instance(at, call.params.get("versionId"))
            .await?;
        if head.as_ref().and_then(identity_of).as_deref() != Some(judged) {
            return Err(object_changed());
        }
        Ok(())
    }

    /// Just before an ACL change is sent: its turn on the record it replaces, the grants to
    /// users it replaces removed, and — last, the records' requests done, the shortest time
    /// before the change — the object it was allowed on checked to be the one there.
    pub(in crate::request) async fn change_acl_in_turn(
        &self,
        call: &mut Call<'_>,
    ) -> Result<(), HcpError> {
        let turn = self.acl_turn(call).await?;
        *call
            .acl_turn
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = turn;
        // (Checked once the records' requests are done, the shortest time before the change; a
        // change found on another object puts back what it removed, in its turn, and so
        // changes nothing.)
        call.guards.replaced_acl = self.remove_replaced_acl(call).await?;
        if let Err(e) = self.still_the_object_judged(call).await {
            self.put_back_replaced_acl(call).await?;
            return Err(e);
        }
        Ok(())
    }

    /// An ACL change's turn on the record it replaces (`Call::acl_turn`), where it has one;
    /// 503 after [`owners::TURN_WAIT`] (the change before may be a slow backend's).
    async fn acl_turn(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>, HcpError> {
        let Some((name, _)) = call.guards.acl_target.as_ref() else {
            return Ok(None);
        };
        let turn = self.acl_turns.of(name.clone()).lock_owned();
        match tokio::time::timeout(crate::request::owners::TURN_WAIT, turn).await {
            Ok(turn) => Ok(Some(turn)),
            Err(_) => Err(unavailable("another change of the ACL is under way".into())),
        }
    }

    /// The change's turn given up, once what the backend answered is recorded (or put back):
    /// the client's reading of the answer holds no other change up.
    pub(in crate::request) fn acl_turn_done(&self, call: &Call<'_>) {
        let turn = call
            .acl_turn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(turn);
    }

    /// Just before an ACL change is sent (checked whole, its body too): the grants to users it
    /// replaces are removed, so that a change that fails part-way leaves fewer grants, never
    /// the old ones; the record removed, if there was one, for a change the backend refuses
    /// ([`Gateway::restore_replaced_acl`]).
    pub(in crate::request) async fn remove_replaced_acl(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<Vec<u8>>, HcpError> {
        let Some((name, _)) = call.guards.acl_target.as_ref() else {
            return Ok(None);
        };
        let at = At {
            target: call.target,
            route: call.route,
        };
        let records = Records::of_tenant(at).ok_or_else(|| unavailable("no records".into()))?;
        let replaced = Box::pin(self.get_record(&records, name.clone()))
            .await
            .map_err(unavailable)?;
        self.forget_acl(at, name);
        Box::pin(self.delete_record(&records, name.clone()))
            .await
            .map_err(unavailable)?;
        Ok(replaced)
    }

    /// An ACL change the backend did not carry out: what it removed put back where a 4xx says
    /// nothing changed, and its turn given up — the client's reading of the refusal holds no
    /// other change up.
    pub(in crate::request) async fn acl_change_refused(
        &self,
        call: &Call<'_>,
        status: u16,
    ) -> Result<(), HcpError> {
        let restored = match call.guards.replaced_acl.is_some() {
            true => self.restore_replaced_acl(call, status).await,
            false => Ok(()),
        };
        self.acl_turn_done(call);
        restored
    }

    /// An ACL change the backend refused (a 4xx: nothing changed there) gets the grants to
    /// users it replaced back, as they were; where they cannot be written again, 503 (set the
    /// ACL again) — never the refusal alone, which would say that nothing changed.
    async fn restore_replaced_acl(&self, call: &Call<'_>, status: u16) -> Result<(), HcpError> {
        // (A refused CreateBucket's record was a deleted bucket's, left over: never back. The
        // change's turn kept any other change through this replica from coming between.)
        let change = matches!(call.op, Operation::PutBucketAcl | Operation::PutObjectAcl);
        if !change || !(400..500).contains(&status) {
            return Ok(());
        }
        self.put_back_replaced_acl(call).await
    }

    /// Writes back the record of grants to users the change removed, where it removed one
    /// (in its turn).
    async fn put_back_replaced_acl(&self, call: &Call<'_>) -> Result<(), HcpError> {
        let (Some((name, _)), Some(replaced)) = (
            call.guards.acl_target.as_ref(),
            call.guards.replaced_acl.as_ref(),
        ) else {
            return Ok(());
        };
        let at = At {
            target: call.target,
            route: call.route,
        };
        let records = Records::of_tenant(at).ok_or_else(|| unavailable("no records".into()))?;
        self.forget_acl(at, name);
        let put = self.put_record(&records, name.clone(), replaced).await;
        // (A reading made while it was written is not kept either.)
        self.forget_acl(at, name);
        put.map_err(|e| {
            unavailable(format!(
                "restoring the grants of an ACL change not made: {e}"
            ))
            .with_message(
                "The ACL change was not made, and the grants to users it would have \
                         replaced could not be kept: set the ACL again.",
            )
        })
    }

    /// After the backend's success, where the tenant keeps records: the grants to users that
    /// the request set, recorded on the object it set them on — checked to be the one the
    /// backend answered for (an ETag from the answer, `etag`), or the one judged before
    /// sending — else nothing is recorded and the answer is 503 (set the ACL again); a deleted
    /// bucket's record removed.
    pub(in crate::request) async fn acls_after(
        &self,
        call: &Call<'_>,
        upstream: &ResponseHeader,
        etag: Option<&str>,
    ) -> Result<(), HcpError> {
        // (Asked after every success: the rest — reads above all — return at once, as do
        // writes where the tenant keeps no records.)
        if !records_acls(call.op) {
            return Ok(());
        }
        let at = At {
            target: call.target,
            route: call.route,
        };
        let Some(records) = Records::of_tenant(at) else {
            return Ok(());
        };
        // Boxed: only the writes above, where the tenant keeps records, get here, and every
        // answer's future would otherwise carry this one's space.
        Box::pin(self.acl_records_after(call, (at, &records), upstream, etag)).await
    }

    /// [`Gateway::acls_after`] for a request whose grants are recorded, in `records`.
    async fn acl_records_after(
        &self,
        call: &Call<'_>,
        (at, records): (At<'_>, &Records<'_>),
        upstream: &ResponseHeader,
        etag: Option<&str>,
    ) -> Result<(), HcpError> {
        let change = call
            .guards
            .acl_change
            .as_ref()
            .or(call.params.effects.acl_change.as_ref());
        let grants = change.map(|c| c.grants.clone()).unwrap_or_default();
        let backend_bucket = at.route.backend_bucket.clone().unwrap_or_default();
        let key = at.target.key().unwrap_or_default();
        let changed = object_changed;
        let (name, instance) = match call.op {
            Operation::DeleteBucket => {
                let name = bucket_acl_record(&backend_bucket);
                self.forget_acl(at, &name);
                self.forget_object_acls(records, &name).await;
                return self.delete_record(records, name).await.map_err(unavailable);
            }
            Operation::CreateBucket | Operation::PutBucketAcl => {
                (bucket_acl_record(&backend_bucket), None)
            }
            Operation::PutObjectAcl if grants.is_empty() => {
                if let Some((name, _)) = &call.guards.acl_target {
                    self.forget_acl(at, name);
                }
                // (Allowed by the object's own owner or ACL: said if it landed on another.)
                return self.still_the_object_judged(call).await;
            }
            Operation::PutObjectAcl => {
                let target = call.guards.acl_target.clone();
                let (name, judged) = target
                    .and_then(|(name, i)| Some((name, i?)))
                    .ok_or_else(changed)?;
                let version = call.params.get("versionId");
                let head = self.object_instance(at, version).await?;
                if head.as_ref().and_then(instance_of).as_deref() != Some(judged.as_str()) {
                    return Err(changed());
                }
                (name, Some(judged))
            }
            Operation::PutObject | Operation::CopyObject if !grants.is_empty() => {
                let instance = self.written_instance(at, upstream, etag).await?;
                let name = object_acl_record(&backend_bucket, &key, &instance);
                (name, Some(instance))
            }
            // A metadata change whose ACL grants no user (one it named, or the object's, which
            // held none): `remove_rewritten_record`.
            Operation::CopyObject if call.params.effects.metadata_edit => {
                return self
                    .remove_rewritten_record(call, (at, records), upstream)
                    .await;
            }
            _ => return Ok(()),
        };
        if grants.is_empty() {
            // (Removed before the change was sent; a reading made meanwhile is forgotten.)
            self.forget_acl(at, &name);
            return Ok(());
        }
        let record = AclRecord {
            bucket: backend_bucket.to_string(),
            key: at.target.key_lossy(),
            instance,
            grants,
        };
        let body = serde_json::to_vec(&record).map_err(|e| unavailable(e.to_string()))?;
        self.forget_acl(at, &name);
        let written = self.put_record(records, name.clone(), &body).await;
        self.forget_acl(at, &name);
        written.map_err(unavailable)
    }
}

impl Gateway {
    /// After a metadata change whose ACL grants no user (one it named, or the object's, which
    /// held none): in a bucket without versions it rewrote the very instance (its bytes, so
    /// its ETag, kept, as the object's HEAD before the change named it), whose grants to users
    /// are no longer its ACL — their record goes. (A change that made a version of its own left
    /// the old one — a `null` one too — with its record; the new one has none.)
    async fn remove_rewritten_record(
        &self,
        call: &Call<'_>,
        (at, records): (At<'_>, &Records<'_>),
        upstream: &ResponseHeader,
    ) -> Result<(), HcpError> {
        let made_a_version = version_of(upstream).is_some();
        let before = call.edited.as_ref().and_then(|e| e.head.as_ref());
        let rewritten = before
            .filter(|h| h.status == 200 && !made_a_version)
            .and_then(instance_of)
            .filter(|i| i.starts_with("e:"));
        let Some(instance) = rewritten else {
            return Ok(());
        };
        let backend_bucket = at.route.backend_bucket.as_deref().unwrap_or_default();
        let key = at.target.key().unwrap_or_default();
        let name = object_acl_record(backend_bucket, &key, &instance);
        self.forget_acl(at, &name);
        let removed = self.delete_record(records, name.clone()).await;
        self.forget_acl(at, &name);
        removed.map_err(unavailable)
    }
}

impl Gateway {
    /// HCP: the owner keeps full control whatever an ACL grants (manual 820, 1119). Grant
    /// headers replace the backend's whole ACL — its own account's full control too, which
    /// some backends then enforce against it (RGW): the backend account's full control is
    /// granted with them. (A new bucket's is added where the account's id is known already.)
    pub(in crate::request) async fn keep_owner_control(
        &self,
        req: &mut pingora::http::RequestHeader,
        (at, op): (At<'_>, Operation),
    ) {
        if !sets_acl(op) || !crate::request::validate::acl::has_grant_headers(req) {
            return;
        }
        // (Validation left only grants to groups in the headers — at most ten, each group
        // once per permission — so the owner's grant never makes more than HCP's 100.)
        let Some(id) = Box::pin(self.backend_owner(at.target, at.route)).await else {
            return;
        };
        let name = "x-amz-grant-full-control";
        let value = match req.headers.get(name).and_then(|v| v.to_str().ok()) {
            Some(given) => format!("{given}, id=\"{id}\""),
            None => format!("id=\"{id}\""),
        };
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            req.insert_header(name, value).expect("valid header");
        }
    }

    /// What an ACL change grants (`granted`, ACL permissions) must be held by its author: by
    /// its permissions (`held`), and where they fall short, by owning the bucket or by the ACLs
    /// — asked only then.
    pub(in crate::request) async fn check_granting(
        &self,
        (at, op, params): (At<'_>, Operation, &Params),
        caller: Option<&Owner>,
        held: &mut Vec<Permission>,
        granted: &[&str],
    ) -> Result<(), HcpError> {
        if check_grantable(granted, held).is_ok() {
            return Ok(());
        }
        let mut lacking: Vec<Permission> = Vec::new();
        for p in granted.iter().flat_map(|g| granted_by(g).iter().copied()) {
            if !held.contains(&p) && !lacking.contains(&p) {
                lacking.push(p);
            }
        }
        let object = acts_on_its_object(op, params).then(|| params.get("versionId"));
        // (Refused or unreadable: the permissions' answer stands. Read now: what it grants is
        // made lasting by the change, `judge`.)
        let judged = self.judge_reading(at, (object, true), caller, &lacking);
        if let Ok(judged) = judged.await {
            held.extend(judged.held);
        }
        check_grantable(granted, held)
    }
}

/// An ACL change whose object changed under it: its grants to users are not kept.
fn object_changed() -> HcpError {
    unavailable("the object changed while its ACL was set".into()).with_message(
        "The object changed while its ACL was set; its grants to users were not kept: set the \
         ACL again.",
    )
}

impl Gateway {
    /// The instance a write stored, read back by a HEAD of the version it answered and checked
    /// against the ETag it answered (`object_changed` where another write came between).
    async fn written_instance(
        &self,
        at: At<'_>,
        upstream: &ResponseHeader,
        etag: Option<&str>,
    ) -> Result<String, HcpError> {
        let version = version_of(upstream);
        let head = self.object_instance(at, version.as_deref()).await?;
        let head = head.ok_or_else(object_changed)?;
        let headed = head.headers.get("etag").and_then(|v| v.to_str().ok());
        let same = etag
            .zip(headed)
            .is_some_and(|(e, h)| crate::etag::listed(e, h));
        if !same {
            return Err(object_changed());
        }
        instance_of(&head).ok_or_else(object_changed)
    }
}

impl Gateway {
    /// A metadata change keeps its object's ACL: HCP changes an object's metadata in place,
    /// where S3's copy would give the object it makes no grant but those the copy names. Where
    /// the change names no ACL of its own, the object's grants to groups (`head`'s version's,
    /// read now, not from the cache: a grant just revoked is not restored) go with the copy as
    /// grant headers, and where the tenant keeps records its grants to users are returned, to
    /// be recorded on the object the copy makes. Where the tenant keeps records, an ACL that
    /// cannot be read is 503 (the change would drop it); elsewhere a backend that does not let
    /// the gateway read it (4xx) leaves the copy the backend's own, as before the gateway kept
    /// any. An object encrypted with a customer's key whose ACL grants to users is 501: its
    /// new version could not be read back to record them on.
    pub(in crate::request) async fn keep_object_acl(
        &self,
        req: &mut pingora::http::RequestHeader,
        at: At<'_>,
        head: &ResponseHeader,
    ) -> Result<Option<AclChange>, HcpError> {
        let acl = if Records::of_tenant(at).is_some() {
            let (params, name) = object_acl_source(at, head).map_err(unavailable)?;
            match self
                .read_acl(at, at.target, params, name)
                .await
                .map_err(unavailable)?
            {
                Some((acl, _)) => (*acl).clone(),
                // (No object now: the copy's own answer says so.)
                None => return Ok(None),
            }
        } else {
            let params = version_params(head).with("acl", "");
            let read = self.backend_call(Operation::GetObjectAcl, params, at.target, at.route);
            let (all_users, authenticated) = match read.await {
                Some((h, body)) if h.status == 200 => group_grants(&body).map_err(unavailable)?,
                Some((h, _)) if h.status.is_client_error() => return Ok(None),
                other => {
                    let status = other.map(|(h, _)| h.status.as_u16());
                    return Err(unavailable(format!("reading the object's ACL: {status:?}")));
                }
            };
            Acl {
                users: Vec::new(),
                all_users,
                authenticated,
            }
        };
        let customer_key = "x-amz-server-side-encryption-customer-algorithm";
        if !acl.users.is_empty() && head.headers.contains_key(customer_key) {
            return Err(HcpError::new(HcpCode::NotImplemented).with_message(
                "Changing the metadata of an object encrypted with a customer's key whose ACL \
                 grants access to users is not supported.",
            ));
        }
        group_grant_headers(req, &acl);
        Ok((!acl.users.is_empty()).then_some(AclChange { grants: acl.users }))
    }
}

/// An ACL's grants to groups, as the grant headers of a write (READ, READ_ACP, WRITE_ACP and
/// FULL_CONTROL: a write's headers grant no WRITE on an object).
fn group_grant_headers(req: &mut pingora::http::RequestHeader, acl: &Acl) {
    let groups = [
        (crate::request::validate::acl::ALL_USERS, &acl.all_users),
        (
            crate::request::validate::acl::AUTHENTICATED_USERS,
            &acl.authenticated,
        ),
    ];
    for (header, permission) in [
        ("x-amz-grant-read", "READ"),
        ("x-amz-grant-read-acp", "READ_ACP"),
        ("x-amz-grant-write-acp", "WRITE_ACP"),
        ("x-amz-grant-full-control", "FULL_CONTROL"),
    ] {
        let grantees: Vec<String> = groups
            .iter()
            .filter(|(_, granted)| granted.iter().any(|g| g == permission))
            .map(|(uri, _)| format!("uri=\"{uri}\""))
            .collect();
        if !grantees.is_empty() {
            req.insert_header(header, grantees.join(", "))
                .expect("a grant header");
        }
    }
}

/// Operations after which ACL records may change: ACL changes, writes that set an ACL, a
/// bucket created or deleted.
fn records_acls(op: Operation) -> bool {
    matches!(
        op,
        Operation::DeleteBucket
            | Operation::CreateBucket
            | Operation::PutBucketAcl
            | Operation::PutObjectAcl
            | Operation::PutObject
            | Operation::CopyObject
    )
}

/// An ACL read for a request, and where it was read now (not from the cache) its cache key
/// and the generation of ACL changes it was read in.
pub(in crate::request) struct AclRead {
    acl: Arc<Acl>,
    fresh: Option<(String, u64)>,
}

/// The version id a write's answer names, in S3's header or OBS's (`x-obs-version-id`), as
/// the backend wrote it (`null` too).
pub(in crate::request) fn version_header(answer: &ResponseHeader) -> Option<&http::HeaderValue> {
    ["x-amz-version-id", "x-obs-version-id"]
        .iter()
        .find_map(|h| answer.headers.get(*h))
}

/// The version a HEAD or write answered (S3's header or OBS's), where the backend keeps one
/// (S3's `null` names none).
pub(in crate::request) fn version_of(head: &ResponseHeader) -> Option<String> {
    version_header(head)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && *v != "null")
        .map(str::to_string)
}

/// The `<ETag>` of a copy's answer (the one it stored).
pub fn etag_in(doc: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(doc).ok()?;
    let start = text.find("<ETag>")? + "<ETag>".len();
    let end = start + text[start..].find("</ETag>")?;
    Some(
        text[start..end]
            .replace("&quot;", "\"")
            .replace("&#34;", "\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Owner {
        Owner::named(&crate::config::hcp_access_key(name), name)
    }

    fn grant(to: &str, permission: &str) -> UserGrant {
        UserGrant {
            grantee: user(to),
            permission: permission.into(),
        }
    }

    #[test]
    fn acl_permissions_are_hcps_data_access_permissions() {
        use Permission::*;
        assert_eq!(granted_by("READ"), [Read]);
        assert_eq!(granted_by("WRITE"), [Write, Delete]);
        assert_eq!(granted_by("READ_ACP"), [ReadAcl]);
        assert_eq!(granted_by("WRITE_ACP"), [WriteAcl]);
        assert_eq!(granted_by("FULL_CONTROL"), FULL_CONTROL);
        assert!(granted_by("read").is_empty() && granted_by("ADMIN").is_empty());
    }

    #[test]
    fn grants_reach_their_grantee_only() {
        let (lgreen, pdgrey) = (user("lgreen"), user("pdgrey"));
        let acl = Acl {
            users: vec![grant("lgreen", "READ")],
            ..Acl::default()
        };
        assert!(allows(&[&acl], Some(&lgreen), &[Permission::Read]));
        assert!(!allows(&[&acl], Some(&lgreen), &[Permission::Write]));
        assert!(!allows(&[&acl], Some(&pdgrey), &[Permission::Read]));
        assert!(!allows(&[&acl], None, &[Permission::Read]));
        // Grants add up across the bucket's ACL and the object's.
        let object = Acl {
            users: vec![grant("lgreen", "WRITE_ACP")],
            ..Acl::default()
        };
        let both = [Permission::Read, Permission::WriteAcl];
        assert!(allows(&[&acl, &object], Some(&lgreen), &both));
        assert!(!allows(&[&object], Some(&lgreen), &both));
    }

    #[test]
    fn groups_reach_anonymous_callers_only_as_all_users() {
        let someone = user("mwhite");
        let authenticated = Acl {
            authenticated: vec!["READ".into()],
            ..Acl::default()
        };
        assert!(allows(
            &[&authenticated],
            Some(&someone),
            &[Permission::Read]
        ));
        assert!(!allows(&[&authenticated], None, &[Permission::Read]));
        let all = Acl {
            all_users: vec!["FULL_CONTROL".into()],
            ..Acl::default()
        };
        assert!(allows(&[&all], None, FULL_CONTROL));
        assert!(allows(&[&all], Some(&someone), FULL_CONTROL));
        assert!(!allows(&[&all], None, &[Permission::Admin]));
    }

    #[test]
    fn an_acl_grants_only_what_its_author_holds() {
        use Permission::*;
        assert!(check_grantable(&["READ", "READ_ACP"], &[Read, ReadAcl, WriteAcl]).is_ok());
        let refused = check_grantable(&["FULL_CONTROL"], &[Read, ReadAcl, WriteAcl, Write]);
        assert_eq!(refused.unwrap_err().code, HcpCode::AccessDenied);
        assert!(
            check_grantable(&["WRITE"], &[Write]).is_err(),
            "write is delete too"
        );
        assert!(check_grantable(&["WRITE"], &[Write, Delete]).is_ok());
        assert!(check_grantable(&[], &[]).is_ok());
        let mut req = pingora::http::RequestHeader::build("PUT", b"/b/k?acl", None).unwrap();
        req.insert_header("x-amz-acl", "public-read-write").unwrap();
        assert_eq!(
            crate::request::validate::acl::granted_in_headers(&req),
            ["READ", "WRITE"]
        );
        let mut req = pingora::http::RequestHeader::build("PUT", b"/b/k?acl", None).unwrap();
        req.insert_header("x-amz-grant-write-acp", "uri=\"x\"")
            .unwrap();
        req.insert_header("x-amz-acl", "private").unwrap();
        assert_eq!(
            crate::request::validate::acl::granted_in_headers(&req),
            ["WRITE_ACP"]
        );
    }

    #[test]
    fn an_object_stored_again_is_another_instance() {
        let head = |pairs: &[(&str, &str)]| {
            let mut h = ResponseHeader::build(200, None).unwrap();
            for (n, v) in pairs {
                h.insert_header(n.to_string(), *v).unwrap();
            }
            h
        };
        let first = head(&[
            ("etag", "\"a\""),
            ("last-modified", "Mon, 30 Nov 2026 10:00:00 GMT"),
        ]);
        let again = head(&[
            ("etag", "\"b\""),
            ("last-modified", "Mon, 30 Nov 2026 10:00:00 GMT"),
        ]);
        // (An ACL change moves Last-Modified at RGW: the same object still.)
        let acl_changed = head(&[
            ("etag", "\"a\""),
            ("last-modified", "Mon, 30 Nov 2026 10:00:05 GMT"),
        ]);
        assert_eq!(instance_of(&first), instance_of(&acl_changed));
        let versioned = head(&[("etag", "\"a\""), ("x-amz-version-id", "3")]);
        let unversioned = head(&[("etag", "\"a\""), ("x-amz-version-id", "null")]);
        assert_ne!(instance_of(&first), instance_of(&again));
        assert_eq!(instance_of(&versioned).as_deref(), Some("v:3"));
        // (OBS's own signing answers its own header: the version all the same.)
        let obs = head(&[("etag", "\"a\""), ("x-obs-version-id", "4")]);
        assert_eq!(instance_of(&obs).as_deref(), Some("v:4"));
        assert_eq!(version_of(&obs).as_deref(), Some("4"));
        assert!(instance_of(&unversioned).unwrap().starts_with("e:"));
        assert_eq!(instance_of(&head(&[])), None);
        let name = |key: &[u8], i: &str| object_acl_record("b", key, i);
        assert_ne!(name(b"k", "v:1"), name(b"k", "v:2"));
        assert_ne!(name(b"k\nv:1", "x"), name(b"k", "v:1\nx"));
        assert!(name(b"k", "v:1").starts_with("acls/b/"));
        assert_eq!(bucket_acl_record("b"), "acls/b");
    }
}

//! Phase 3b, authorisation ([`authorize`]): what an identity may do on which tenant and buckets.
//!
//! Users hold [`Grant`]s (tenant, bucket pattern, permissions); tenants hold the grants of
//! anonymous callers. Each operation requires one [`Permission`] on its bucket; copies also
//! require `Read` on the source bucket.

use http::Method;
use pingora::http::RequestHeader;

use crate::config::Tenant;
use crate::hcp::errors::{HcpCode, HcpError};
use crate::request::address::Target;
use crate::request::authenticate::{Identity, Principal};
use crate::request::classify::Operation;
use crate::request::sign::CopySource;

/// Authorisation: the identity's grants (an anonymous caller's are the tenant's anonymous
/// grants) must allow the operation on its bucket, and reading the source of a copy. A tenant
/// a reload removed serves nobody, not even a preflight.
pub fn authorize(
    identity: &Identity,
    tenant: &Tenant,
    op: Operation,
    req: &RequestHeader,
    target: &Target,
) -> Result<(), HcpError> {
    // (Every other request's grants are read through `grants_of`, which asks it.)
    if op == Operation::CorsPreflight {
        return serving(tenant);
    }
    authorize_with(&grants_of(identity, tenant, op)?, tenant, op, req, target)
}

/// The grants an identity acts with: a user's own, or the tenant's anonymous grants as they
/// are now (a reload replaces them).
enum Grants<'a> {
    Own(&'a [Grant]),
    Anonymous(std::sync::Arc<Vec<Grant>>),
}

impl std::ops::Deref for Grants<'_> {
    type Target = [Grant];
    fn deref(&self) -> &[Grant] {
        match self {
            Grants::Own(grants) => grants,
            Grants::Anonymous(grants) => grants,
        }
    }
}

/// Whether `tenant` serves at all: not once a reload removed it (`Tenant::removed`), until a
/// restart.
pub fn serving(tenant: &Tenant) -> Result<(), HcpError> {
    match tenant.removed.on() {
        true => Err(denied().with_cause("the tenant was removed by a reload")),
        false => Ok(()),
    }
}

/// The grants an identity acts with on `tenant`: a user's own (where it may act there at
/// all), an anonymous caller's the tenant's anonymous grants.
fn grants_of<'a>(
    identity: &'a Identity,
    tenant: &'a Tenant,
    op: Operation,
) -> Result<Grants<'a>, HcpError> {
    serving(tenant)?;
    match identity.principal() {
        Principal::User(user) => {
            check_tenant(user, identity.scheme(), &tenant.name)?;
            Ok(Grants::Own(&user.grants))
        }
        Principal::Anonymous if is_multipart(op) => {
            Err(denied().with_message("Multipart uploads require an authenticated user."))
        }
        // HCP: "To list the buckets you own, you must be an authenticated user."
        Principal::Anonymous if op == Operation::ListBuckets => {
            Err(denied().with_message("Listing buckets requires an authenticated user."))
        }
        Principal::Anonymous => Ok(Grants::Anonymous(tenant.anonymous.load())),
    }
}

/// Where the permissions do not allow a request, the ones an ACL or ownership would have to
/// grant — on the target's bucket, and read on a copy's source — for every rule to allow it
/// (`request::acls` asks the backend before sending); `None` where nothing could: the tenant
/// keeps no records, an anonymous caller where the tenant does not let ACLs admit anonymous
/// requests, a missing permission no ACL grants (bucket administration, purge, privileged,
/// Object Lock's), or a rule refusing for another reason (another tenant).
pub fn missing_for_acl(
    identity: &Identity,
    tenant: &Tenant,
    op: Operation,
    req: &RequestHeader,
    target: &Target,
) -> Option<crate::request::acls::Needed> {
    let bucket = target.bucket.as_deref()?;
    let anonymous = matches!(identity.principal(), Principal::Anonymous);
    if tenant.records_bucket.is_none() || (anonymous && !tenant.anonymous_acls.on()) {
        return None;
    }
    // (A bucket name is never a pattern; one that looked like it is not judged here.)
    if bucket.contains('*') {
        return None;
    }
    let grants = &*grants_of(identity, tenant, op).ok()?;
    // HCP: the "authenticated users" of a tenant's ACLs are its own users. A user of another
    // tenant (configured there, or granted nothing here) is no grantee of this one's ACLs.
    if identity
        .user()
        .is_some_and(|u| !belongs_to(u, &tenant.name))
    {
        return None;
    }
    let lacks = |b: &str, p: Permission| check(grants, &tenant.name, Some(b), Some(p)).is_err();
    let mut missing: Vec<Permission> = Vec::new();
    for p in required(op, &req.method)
        .into_iter()
        .chain(required_by_request(op, req, target))
    {
        if lacks(bucket, p) && !missing.contains(&p) {
            missing.push(p);
        }
    }
    // HCP's privileged delete needs "delete or purge permission for the bucket": the bucket's
    // owner or ACL may give it (its creator holds delete; WRITE gives write and delete), an
    // object's owner or ACL lets an ordinary delete through, never a privileged one.
    let bucket_only = privileged_delete(op, &req.headers, tenant);
    // HCP: creating a bucket needs no permission beyond being allowed to create it; its
    // creator owns it, with full control, and may give it an ACL at once. Likewise an
    // authenticated user storing an object owns the new object (manual 779) and may give it
    // an ACL (`request::object_owners`). A metadata change (a copy onto itself with REPLACE)
    // stores no new object: it keeps its object's owner, and an ACL it sets needs write ACL.
    // (Judged before the source bucket's versioning is known: one naming a version may be a
    // metadata change where that version id is ignored, `forward::copy_source_version`.)
    let edit = crate::request::validate::probes::replaces_its_own_metadata(req, (op, true), target);
    let owns_new = op == Operation::CreateBucket
        || (!anonymous && !edit && crate::request::object_owners::stores_object(op));
    let creator = owns_new.then_some(Permission::WriteAcl);
    missing.retain(|p| Some(*p) != creator);
    let grantable = missing
        .iter()
        .all(|p| crate::request::acls::FULL_CONTROL.contains(p));
    let mut with = grants.to_vec();
    with.push(Grant::new(
        &tenant.name,
        bucket,
        missing.iter().copied().chain(creator),
    ));
    // A copy's source, where the permissions do not make it readable: read by its ACL.
    let source = req
        .headers
        .get("x-amz-copy-source")
        .and_then(|v| CopySource::parse(v.as_bytes()))
        .filter(|_| matches!(op, Operation::CopyObject | Operation::UploadPartCopy))
        .filter(|s| !s.bucket.contains('*'));
    let source_read = source
        .as_ref()
        .is_some_and(|s| lacks(&s.bucket, Permission::Read));
    if let Some(s) = source.filter(|_| source_read) {
        with.push(Grant::new(&tenant.name, &s.bucket, [Permission::Read]));
    }
    let needed = crate::request::acls::Needed {
        on_target: missing,
        source_read,
        bucket_only,
    };
    if !grantable || (needed.is_empty() && creator.is_none()) {
        return None;
    }
    authorize_with(&with, tenant, op, req, target)
        .ok()
        .map(|()| needed)
}

/// The rules, with `grants` as the caller's.
fn authorize_with(
    grants: &[Grant],
    tenant: &Tenant,
    op: Operation,
    req: &RequestHeader,
    target: &Target,
) -> Result<(), HcpError> {
    let bucket = target.bucket.as_deref();
    match check(grants, &tenant.name, bucket, required(op, &req.method)) {
        // HCP asks delete of an abort — which lets a bucket administrator who deletes end an
        // upload whose initiator the gateway cannot tell (`aborts_unattributed`); the
        // gateway lets an upload's writer end it too (`required`).
        Err(_) if op == Operation::AbortMultipartUpload => {
            check(grants, &tenant.name, bucket, Some(Permission::Delete))?
        }
        checked => checked?,
    }
    for also in required_by_request(op, req, target) {
        check(grants, &tenant.name, target.bucket.as_deref(), Some(also)).map_err(|e| {
            e.with_message(format!(
                "This request's headers need the {} permission.",
                also.name()
            ))
        })?;
    }
    if tenant.retention.mode != crate::config::RetentionMode::Off {
        hcp_retention_rules(grants, tenant, op, &req.headers, target.bucket.as_deref())?;
    }
    if matches!(op, Operation::CopyObject | Operation::UploadPartCopy) {
        // (A source that does not parse is refused by validation, 400.)
        if let Some(source) = req
            .headers
            .get("x-amz-copy-source")
            .and_then(|v| CopySource::parse(v.as_bytes()))
        {
            check(
                grants,
                &tenant.name,
                Some(&source.bucket),
                Some(Permission::Read),
            )?;
        }
    }
    Ok(())
}

/// Whether an authenticated user (never an anonymous caller) holds `permission` on the
/// target's bucket: what decides the effects beyond the operation's own (purging versions,
/// seeing labeled holds).
pub fn may(identity: &Identity, tenant: &Tenant, target: &Target, permission: Permission) -> bool {
    match identity.principal() {
        Principal::User(user) => check(
            &user.grants,
            &tenant.name,
            target.bucket.as_deref(),
            Some(permission),
        )
        .is_ok(),
        Principal::Anonymous => false,
    }
}

/// Of the permissions an ACL can grant, those the identity's own grants hold on the target's
/// bucket (an ACL change may grant only these, and what ACLs or ownership give the caller).
pub fn held(identity: &Identity, tenant: &Tenant, target: &Target) -> Vec<Permission> {
    let Ok(grants) = grants_of(identity, tenant, Operation::PutObjectAcl) else {
        return Vec::new();
    };
    let grants = &*grants;
    crate::request::acls::FULL_CONTROL
        .iter()
        .copied()
        .filter(|p| check(grants, &tenant.name, target.bucket.as_deref(), Some(*p)).is_ok())
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Write,
    Delete,
    ReadAcl,
    WriteAcl,
    /// Bucket administration: create, delete and configure buckets.
    Admin,
    /// Deleting a specific version of an object, for good (HCP's purge; S3's
    /// `s3:DeleteObjectVersion`): more than a delete, which only hides the object.
    Purge,
    /// HCP's privileged permission: holds (`x-hcp-retentionhold`) and privileged deletes
    /// (`x-hcp-privileged`) of objects under retention.
    Privileged,
    /// HCP's change owner permission: with write ACL, the owner of a bucket may make another
    /// user its owner (an ACL body's `Owner`).
    ChangeOwner,
    // HCP's S3 Object Lock permissions (manual, "S3 Object Lock Permissions").
    GetBucketObjectLockConfiguration,
    PutBucketObjectLockConfiguration,
    GetObjectRetention,
    PutObjectRetention,
    GetObjectLegalHold,
    PutObjectLegalHold,
    /// Deleting, or shortening the retention of, a version in governance mode
    /// (`x-amz-bypass-governance-retention: true`).
    BypassGovernanceRetention,
}

impl Permission {
    /// Every permission with its name in the configuration.
    const NAMED: &'static [(Permission, &'static str)] = &[
        (Permission::Read, "read"),
        (Permission::Write, "write"),
        (Permission::Delete, "delete"),
        (Permission::ReadAcl, "read-acl"),
        (Permission::WriteAcl, "write-acl"),
        (Permission::Admin, "admin"),
        (Permission::Purge, "purge"),
        (Permission::Privileged, "privileged"),
        (Permission::ChangeOwner, "change-owner"),
        (
            Permission::GetBucketObjectLockConfiguration,
            "get-bucket-object-lock-configuration",
        ),
        (
            Permission::PutBucketObjectLockConfiguration,
            "put-bucket-object-lock-configuration",
        ),
        (Permission::GetObjectRetention, "get-object-retention"),
        (Permission::PutObjectRetention, "put-object-retention"),
        (Permission::GetObjectLegalHold, "get-object-legal-hold"),
        (Permission::PutObjectLegalHold, "put-object-legal-hold"),
        (
            Permission::BypassGovernanceRetention,
            "bypass-governance-retention",
        ),
    ];
    /// Every permission, in `NAMED`'s order.
    const ALL: [Permission; Permission::NAMED.len()] = {
        let mut all = [Permission::Read; Permission::NAMED.len()];
        let mut i = 0;
        while i < all.len() {
            all[i] = Permission::NAMED[i].0;
            i += 1;
        }
        all
    };
    /// HCP's seven S3 Object Lock permissions, as one name: the last seven of `NAMED`.
    const OBJECT_LOCK: &'static [Permission] = Permission::ALL
        .as_slice()
        .split_at(Permission::NAMED.len() - 7)
        .1;

    /// Parses a configuration name; `all` stands for every permission, `object-lock` for the
    /// seven S3 Object Lock permissions.
    pub fn parse_list(name: &str) -> Option<&'static [Permission]> {
        match name {
            "all" => Some(&Self::ALL),
            "object-lock" => Some(Self::OBJECT_LOCK),
            _ => Self::NAMED
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(p, _)| std::slice::from_ref(p)),
        }
    }

    /// Every name the configuration accepts, `all` and `object-lock` last: for messages.
    pub fn config_names() -> String {
        let mut names: Vec<&str> = Self::NAMED.iter().map(|(_, n)| *n).collect();
        names.extend(["all", "object-lock"]);
        names.join(", ")
    }

    /// The permission's name in the configuration.
    pub fn name(self) -> &'static str {
        Self::NAMED
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("?", |(_, n)| n)
    }
}

/// Permissions on a tenant (or `*`) and the buckets matching a pattern.
#[derive(Debug, Clone)]
pub struct Grant {
    tenant: String,
    buckets: String,
    permissions: Vec<Permission>,
}

impl Grant {
    pub fn new(
        tenant: &str,
        buckets: &str,
        permissions: impl IntoIterator<Item = Permission>,
    ) -> Grant {
        Grant {
            tenant: tenant.to_ascii_lowercase(),
            buckets: buckets.to_ascii_lowercase(),
            permissions: permissions.into_iter().collect(),
        }
    }

    fn covers(&self, tenant: &str, bucket: Option<&str>) -> bool {
        (self.tenant == "*" || self.tenant == tenant)
            && bucket.is_none_or(|b| glob_match(self.buckets.as_bytes(), b.as_bytes()))
    }

    /// The tenant the grant is on (`*` for every tenant).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Whether the grant allows `permission` on `bucket` of `tenant` (`None`: any bucket).
    /// (HCP: "Users with purge permission also have delete permission.")
    pub fn allows(&self, tenant: &str, bucket: Option<&str>, permission: Permission) -> bool {
        let has = |p| self.permissions.contains(&p);
        self.covers(tenant, bucket)
            && (has(permission) || (permission == Permission::Delete && has(Permission::Purge)))
    }
}

/// `*` matches any run of characters, everything else itself; the text is read in lower case
/// (bucket names are case-insensitive).
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob_match(rest, &text[i..])),
        Some((c, rest)) => {
            text.first().map(u8::to_ascii_lowercase) == Some(*c) && glob_match(rest, &text[1..])
        }
    }
}

/// The permission an operation needs on its bucket; `None` for listing the tenant's buckets,
/// which any authenticated user with some grant on the tenant may do. (A CORS preflight needs
/// nothing at all and is let through before grants are consulted.)
pub fn required(op: Operation, method: &Method) -> Option<Permission> {
    use Operation::*;
    use Permission::*;
    Some(match op {
        ListBuckets | CorsPreflight => return None,
        HeadBucket | ListObjects | ListObjectsV2 | ListObjectVersions | ListMultipartUploads
        | GetBucketLocation | GetBucketVersioning | GetObject | HeadObject | ListParts => Read,
        CreateBucket | DeleteBucket | PutBucketVersioning => Admin,
        GetObjectLockConfiguration => Permission::GetBucketObjectLockConfiguration,
        PutObjectLockConfiguration => Permission::PutBucketObjectLockConfiguration,
        Operation::GetObjectRetention => Permission::GetObjectRetention,
        Operation::PutObjectRetention => Permission::PutObjectRetention,
        Operation::GetObjectLegalHold => Permission::GetObjectLegalHold,
        Operation::PutObjectLegalHold => Permission::PutObjectLegalHold,
        // (HCP: "Users with the administrator or monitor role can read CORS settings"; a
        // bucket's lifecycle rules, the other one read, are its operator's as much.)
        BucketSubresource => Admin,
        PutObject
        | PostObject
        | CopyObject
        | CreateMultipartUpload
        | UploadPart
        | UploadPartCopy
        | CompleteMultipartUpload => Write,
        // HCP asks delete permission of an abort as well, and ends abandoned uploads itself
        // after 30 days; the gateway cannot (the embedded store has no such age, a lifecycle
        // rule is not offered), so an upload's writer may end it: what it removes is the
        // initiator's own parts (`validate::uploads` binds the id to its initiator).
        AbortMultipartUpload => Write,
        ObjectSubresource if method == Method::GET || method == Method::HEAD => Read,
        ObjectSubresource => Write,
        DeleteObject | DeleteObjects => Delete,
        GetBucketAcl | GetObjectAcl => ReadAcl,
        PutBucketAcl | PutObjectAcl => WriteAcl,
    })
}

/// [`required_by_headers`], and for a metadata change (a copy of an object onto itself under
/// `REPLACE`) any canned ACL, `private` too: it replaces the object's ACL, where on a new
/// object `private` is the default and changes nothing (HCP: adding or removing an object's
/// ACL needs write ACL).
fn required_by_request(op: Operation, req: &RequestHeader, target: &Target) -> Vec<Permission> {
    let mut needs = required_by_headers(op, &req.headers);
    let replaces_acl = req.headers.contains_key("x-amz-acl")
        && crate::request::validate::probes::replaces_its_own_metadata(req, (op, true), target);
    if replaces_acl && !needs.contains(&Permission::WriteAcl) {
        needs.push(Permission::WriteAcl);
    }
    needs
}

/// The permissions a request's headers call for beyond its operation's:
/// - a write that sets an ACL (`x-amz-acl` other than the default `private`, or any
///   `x-amz-grant-*`) needs Write ACL, as `PUT ?acl` does (S3's `s3:PutObjectAcl`);
/// - a write that sets Object Lock retention (`x-amz-object-lock-mode`, `-retain-until-date`)
///   needs put-object-retention, one that sets a legal hold (`x-amz-object-lock-legal-hold`)
///   put-object-legal-hold, a bucket created with Object Lock put-bucket-object-lock-configuration
///   (as S3 asks for `s3:PutObjectRetention`, `s3:PutObjectLegalHold`, and
///   `s3:PutBucketObjectLockConfiguration`);
/// - `x-amz-bypass-governance-retention: true` needs bypass-governance-retention;
/// - HCP's hold headers on a write asking for a hold (`x-hcp-labelretentionhold`,
///   `x-hcp-retentionhold` other than `false`) need HCP's privileged permission (where the
///   namespace keeps HCP's retention, any hold header and `x-hcp-privileged` on a delete do:
///   `hcp_retention_rules`; elsewhere they have no effect).
pub fn required_by_headers(op: Operation, headers: &http::HeaderMap) -> Vec<Permission> {
    use Operation::*;
    let has = |name: &str| headers.contains_key(name);
    let mut needs = Vec::new();
    let write = matches!(
        op,
        PutObject | CopyObject | CreateMultipartUpload | CreateBucket | PostObject
    );
    // (Each header is looked at only for the operations it gives an effect to: a GET looks
    // up none of them.)
    let canned = || {
        headers
            .get("x-amz-acl")
            .is_some_and(|v| v.as_bytes().trim_ascii() != b"private")
    };
    let grants = || {
        headers
            .keys()
            .any(|n| n.as_str().starts_with("x-amz-grant-"))
    };
    if write && (canned() || grants()) {
        needs.push(Permission::WriteAcl);
    }
    if write && (has("x-amz-object-lock-mode") || has("x-amz-object-lock-retain-until-date")) {
        needs.push(Permission::PutObjectRetention);
    }
    if write && has("x-amz-object-lock-legal-hold") {
        needs.push(Permission::PutObjectLegalHold);
    }
    let locked_bucket = || {
        headers
            .get("x-amz-bucket-object-lock-enabled")
            .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"true"))
    };
    if op == CreateBucket && locked_bucket() {
        needs.push(Permission::PutBucketObjectLockConfiguration);
    }
    // HCP's holds need its privileged permission.
    // (A multipart complete sets them on the completed object.)
    let hold = || {
        has("x-hcp-labelretentionhold")
            || headers
                .get("x-hcp-retentionhold")
                .is_some_and(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"false"))
    };
    if (write || op == CompleteMultipartUpload) && hold() {
        needs.push(Permission::Privileged);
    }
    if matches!(
        op,
        DeleteObject | DeleteObjects | Operation::PutObjectRetention
    ) && bypass_asked(headers)
    {
        needs.push(Permission::BypassGovernanceRetention);
    }
    needs
}

/// `x-amz-bypass-governance-retention: true`.
pub(crate) fn bypass_asked(headers: &http::HeaderMap) -> bool {
    headers
        .get("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"true"))
}

/// Whether a delete is HCP's privileged delete: `x-hcp-privileged`, or S3's bypass where the
/// namespace keeps HCP's retention in enterprise mode (`validate::retention` reads it so).
/// (Where no HCP retention is kept, `x-hcp-privileged` asks a plain delete.)
fn privileged_delete(op: Operation, headers: &http::HeaderMap, tenant: &Tenant) -> bool {
    use crate::config::RetentionMode;
    let mode = tenant.retention.mode;
    let privileged = mode != RetentionMode::Off && headers.contains_key("x-hcp-privileged");
    matches!(op, Operation::DeleteObject | Operation::DeleteObjects)
        && (privileged || (mode == RetentionMode::Enterprise && bypass_asked(headers)))
}

/// In a namespace that keeps HCP's retention, S3 Object Lock's own ways round it are HCP's
/// privileged operations: a governance bypass on a delete is a privileged delete (HCP's
/// `privileged` permission; none in compliance), a legal hold is HCP's hold (`privileged`), and
/// no retention is shortened or removed by S3's bypass (HCP changes retention only by its
/// rules: a copy onto itself).
fn hcp_retention_rules(
    grants: &[Grant],
    tenant: &Tenant,
    op: Operation,
    headers: &http::HeaderMap,
    bucket: Option<&str>,
) -> Result<(), HcpError> {
    use Operation::*;
    let bypass = bypass_asked(headers);
    let compliance = tenant.retention.mode == crate::config::RetentionMode::Compliance;
    if bypass && (compliance || op == Operation::PutObjectRetention) {
        return Err(denied().with_message(
            "This namespace keeps HCP's retention: it is not bypassed here (a privileged delete \
             where the namespace allows it; retention changes by a copy onto itself).",
        ));
    }
    // (S3's legal-hold header on a write places the same hold as `PUT ?legal-hold`.)
    let hold_on_write = matches!(
        op,
        PutObject | CopyObject | CreateMultipartUpload | PostObject
    ) && headers
        .get("x-amz-object-lock-legal-hold")
        .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"ON"));
    // (And HCP's own: a hold header on a write, whatever it asks — `false` on a metadata
    // change releases — and `x-hcp-privileged` on a delete.)
    let hcp_hold = matches!(
        op,
        PutObject | CopyObject | CreateMultipartUpload | PostObject | CompleteMultipartUpload
    ) && (headers.contains_key("x-hcp-retentionhold")
        || headers.contains_key("x-hcp-labelretentionhold"));
    let privileged = (bypass && matches!(op, DeleteObject | DeleteObjects))
        || (matches!(op, DeleteObject | DeleteObjects) && headers.contains_key("x-hcp-privileged"))
        || op == Operation::PutObjectLegalHold
        || hold_on_write
        || hcp_hold;
    if privileged {
        check(grants, &tenant.name, bucket, Some(Permission::Privileged)).map_err(|e| {
            e.with_message("Holds and privileged deletes need the privileged permission.")
        })?;
    }
    // HCP places and releases a hold with write and privileged (a copy onto itself): S3's
    // `PUT ?legal-hold` is that change.
    if op == Operation::PutObjectLegalHold {
        check(grants, &tenant.name, bucket, Some(Permission::Write))
            .map_err(|e| e.with_message("Holds need the write permission besides privileged."))?;
    }
    Ok(())
}

/// Whether `user` is one of `tenant`'s users (HCP: "each tenant has its own set of user
/// accounts"): configured there, at home there (the only tenant, or the only one its grants
/// name), or granted something there. Only they are the tenant's ACL grantees and its
/// "authenticated users".
pub fn belongs_to(user: &crate::request::authenticate::User, tenant: &str) -> bool {
    match user.tenant.as_deref() {
        Some(t) => t == tenant,
        None => {
            user.home_tenant.as_deref() == Some(tenant)
                || check(&user.grants, tenant, None, None).is_ok()
        }
    }
}

/// In HCP a user belongs to one tenant. A user configured with a tenant acts only there; a
/// request signed in a way that does not cover the Host — which names the tenant — is accepted
/// only on the user's home tenant, so that a captured SigV2 request, presigned URL, HCP
/// credential or form cannot be replayed against another tenant where the user has a bucket
/// of the same name.
pub fn check_tenant(
    user: &crate::request::authenticate::User,
    scheme: crate::request::authenticate::AuthScheme,
    tenant: &str,
) -> Result<(), HcpError> {
    if user.tenant.as_deref().is_some_and(|t| t != tenant) {
        return Err(denied().with_message("The user belongs to another tenant."));
    }
    if !scheme.covers_host() && user.home_tenant.as_deref() != Some(tenant) {
        return Err(denied().with_message(
            "This signature does not cover the host: sign with SigV4, or give the user a tenant.",
        ));
    }
    Ok(())
}

/// Multipart operations are never anonymous (HCP: only an authenticated user can upload parts).
pub fn is_multipart(op: Operation) -> bool {
    use Operation::*;
    matches!(
        op,
        ListMultipartUploads
            | CreateMultipartUpload
            | UploadPart
            | UploadPartCopy
            | CompleteMultipartUpload
            | AbortMultipartUpload
            | ListParts
    )
}

pub fn denied() -> HcpError {
    HcpError::new(HcpCode::AccessDenied)
}

/// Checks grants for one permission on one bucket.
pub fn check(
    grants: &[Grant],
    tenant: &str,
    bucket: Option<&str>,
    permission: Option<Permission>,
) -> Result<(), HcpError> {
    let ok = match permission {
        Some(p) => grants.iter().any(|g| g.allows(tenant, bucket, p)),
        None => grants.iter().any(|g| g.covers(tenant, None)),
    };
    if ok {
        Ok(())
    } else {
        Err(denied())
    }
}

/// Whether a user may abort an upload whose initiator the gateway cannot tell (listed
/// unattributed): an administrator of the bucket who may also delete in it — HCP asks an
/// abort's `delete` permission, and this abort ends another user's parts.
pub fn aborts_unattributed(grants: &[Grant], tenant: &str, bucket: Option<&str>) -> bool {
    [Permission::Admin, Permission::Delete]
        .into_iter()
        .all(|p| check(grants, tenant, bucket, Some(p)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unattributed_uploads_are_aborted_by_an_administrator_who_deletes() {
        use Permission::*;
        let may = |perms: &[Permission]| {
            let grants = [Grant::new("t", "*", perms.iter().copied())];
            aborts_unattributed(&grants, "t", Some("b"))
        };
        assert!(may(&[Admin, Delete]));
        assert!(!may(&[Admin, Write]), "an administrator who may not delete");
        assert!(!may(&[Delete, Write]));
        let split = [
            Grant::new("t", "b", [Admin]),
            Grant::new("t", "other", [Delete]),
        ];
        assert!(!aborts_unattributed(&split, "t", Some("b")));
    }

    #[test]
    fn patterns() {
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"logs-*", b"logs-2026"));
        assert!(
            glob_match(b"logs-*", b"LOGS-2026"),
            "bucket names read in lower case"
        );
        assert!(
            !glob_match(b"Logs-*", b"Logs-2026"),
            "patterns are lower case"
        );
        assert!(!glob_match(b"logs-*", b"log"));
        assert!(glob_match(b"a*b*c", b"axxbyyc"));
        assert!(!glob_match(b"exact", b"exactly"));
    }

    #[test]
    fn grants_are_scoped_to_tenant_bucket_and_permission() {
        let g = Grant::new("europe", "logs-*", [Permission::Read]);
        assert!(g.allows("europe", Some("logs-1"), Permission::Read));
        assert!(
            g.allows("europe", Some("LOGS-1"), Permission::Read),
            "bucket names are not case-sensitive"
        );
        assert!(!g.allows("europe", Some("logs-1"), Permission::Write));
        assert!(!g.allows("asia", Some("logs-1"), Permission::Read));
        assert!(!g.allows("europe", Some("data"), Permission::Read));
        let all = Grant::new(
            "*",
            "*",
            Permission::parse_list("all").unwrap().iter().copied(),
        );
        assert!(all.allows("any", Some("bucket"), Permission::Admin));
        assert!(
            check(&[g], "europe", None, None).is_ok(),
            "listing buckets needs a grant on the tenant"
        );
    }

    #[test]
    fn every_permission_has_one_name() {
        for (p, name) in Permission::NAMED {
            assert_eq!(Permission::parse_list(name), Some(&[*p][..]));
            assert_eq!(p.name(), *name);
        }
        let lock = Permission::parse_list("object-lock").unwrap();
        assert_eq!(lock.len(), 7);
        assert!(lock.iter().all(|p| p.name().contains("object-lock")
            || p.name().contains("retention")
            || p.name().contains("legal-hold")));
    }

    #[test]
    fn object_lock_headers_need_their_permissions() {
        use Permission::*;
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = http::HeaderMap::new();
            for (n, v) in pairs {
                h.insert(*n, v.parse().unwrap());
            }
            h
        };
        let lock = headers(&[
            ("x-amz-object-lock-mode", "GOVERNANCE"),
            (
                "x-amz-object-lock-retain-until-date",
                "2099-01-01T00:00:00Z",
            ),
            ("x-amz-object-lock-legal-hold", "ON"),
        ]);
        for op in [
            Operation::PutObject,
            Operation::CopyObject,
            Operation::CreateMultipartUpload,
        ] {
            assert_eq!(
                required_by_headers(op, &lock),
                [PutObjectRetention, PutObjectLegalHold]
            );
        }
        let bypass = headers(&[("x-amz-bypass-governance-retention", "TRUE")]);
        for op in [
            Operation::DeleteObject,
            Operation::DeleteObjects,
            Operation::PutObjectRetention,
        ] {
            assert_eq!(
                required_by_headers(op, &bypass),
                [BypassGovernanceRetention]
            );
        }
        let no_bypass = headers(&[("x-amz-bypass-governance-retention", "false")]);
        assert!(required_by_headers(Operation::DeleteObject, &no_bypass).is_empty());
        // HCP's holds, wherever a write sets them (a complete too), need its privileged
        // permission.
        let labels = headers(&[("x-hcp-labelretentionhold", "[]")]);
        let hold = headers(&[("x-hcp-retentionhold", "true")]);
        for op in [
            Operation::PutObject,
            Operation::CopyObject,
            Operation::CompleteMultipartUpload,
        ] {
            assert_eq!(required_by_headers(op, &labels), [Privileged], "{op:?}");
            assert_eq!(required_by_headers(op, &hold), [Privileged], "{op:?}");
        }
        // Headers that ask for nothing need nothing by themselves (where HCP's retention is
        // kept, `hcp_retention_rules` asks privileged of them all the same).
        let no_hold = headers(&[("x-hcp-retentionhold", " FALSE")]);
        assert!(required_by_headers(Operation::PutObject, &no_hold).is_empty());
        let privileged = headers(&[("x-hcp-privileged", "audit")]);
        assert!(required_by_headers(Operation::DeleteObject, &privileged).is_empty());
        let locked = headers(&[("x-amz-bucket-object-lock-enabled", "true")]);
        assert_eq!(
            required_by_headers(Operation::CreateBucket, &locked),
            [PutBucketObjectLockConfiguration]
        );
        assert_eq!(
            required(Operation::GetObjectLegalHold, &Method::GET),
            Some(GetObjectLegalHold)
        );
    }

    fn records_tenant() -> Tenant {
        let mut tenant = Tenant::for_tests();
        tenant.records_bucket = Some("gw.records".into());
        tenant
    }

    /// A user whose grants are `allow` on buckets `own-*`.
    fn user_allowed(allow: &[Permission]) -> crate::request::authenticate::Identity {
        use crate::request::authenticate::{Identity, Principal, User};
        let grants = vec![Grant::new("t", "own-*", allow.iter().copied())];
        let u = User::new(Some("u".into()), "dQ==".into(), "s".into(), true, grants);
        Identity::for_tests(Principal::User(std::sync::Arc::new(u)))
    }

    fn at(bucket: &str, key: Option<&str>) -> Target {
        Target {
            tenant: "t".into(),
            bucket: Some(bucket.into()),
            raw_key: key.map(|k| k.as_bytes().into()),
            virtual_host: false,
        }
    }

    fn request(method: &str, path: &str, headers: &[(&'static str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build(method, path.as_bytes(), None).unwrap();
        for (n, v) in headers {
            r.insert_header(*n, v.to_string()).unwrap();
        }
        r
    }

    fn on_target(perms: &[Permission]) -> crate::request::acls::Needed {
        crate::request::acls::Needed {
            on_target: perms.to_vec(),
            ..Default::default()
        }
    }

    /// What the permissions lack, for an ACL to grant: only ACL-grantable permissions, only
    /// where the tenant keeps records, anonymous callers only where the tenant lets ACLs admit
    /// them.
    #[test]
    fn only_what_an_acl_can_grant_is_left_to_acls() {
        use crate::request::authenticate::{Identity, Principal};
        let mut tenant = records_tenant();
        let nobody = user_allowed(&[]);
        let get = request("GET", "/b/k", &[]);
        let object = at("b", Some("k"));
        assert_eq!(
            missing_for_acl(&nobody, &tenant, Operation::GetObject, &get, &object),
            Some(on_target(&[Permission::Read]))
        );
        // Without records nothing is left to ACLs.
        let plain = Tenant::for_tests();
        assert_eq!(
            missing_for_acl(&nobody, &plain, Operation::GetObject, &get, &object),
            None
        );
        // No ACL grants bucket administration, purge or Object Lock's permissions.
        let del = request("DELETE", "/b", &[]);
        let bucket = at("b", None);
        assert_eq!(
            missing_for_acl(&nobody, &tenant, Operation::DeleteBucket, &del, &bucket),
            None
        );
        let hold = request("PUT", "/b/k?legal-hold", &[]);
        let op = Operation::PutObjectLegalHold;
        assert_eq!(missing_for_acl(&nobody, &tenant, op, &hold, &object), None);
        // Anonymous callers: only where the tenant lets ACLs admit them, never multipart.
        let anonymous = Identity::for_tests(Principal::Anonymous);
        let op = Operation::GetObject;
        assert_eq!(
            missing_for_acl(&anonymous, &tenant, op, &get, &object),
            None
        );
        tenant.anonymous_acls = true.into();
        assert_eq!(
            missing_for_acl(&anonymous, &tenant, op, &get, &object),
            Some(on_target(&[Permission::Read]))
        );
        let upload = request("POST", "/b/k?uploads", &[]);
        let op = Operation::CreateMultipartUpload;
        assert_eq!(
            missing_for_acl(&anonymous, &tenant, op, &upload, &object),
            None
        );
    }

    /// HCP's privileged delete needs delete or purge permission for the bucket (manual: "provided
    /// that you also have delete or purge permission for the bucket"): left to the bucket's owner
    /// and ACL, never an object's, which let an ordinary delete through. Purge includes delete.
    #[test]
    fn a_privileged_delete_needs_delete_for_the_bucket() {
        let mut tenant = records_tenant();
        tenant.retention.mode = crate::config::RetentionMode::Enterprise;
        let op = Operation::DeleteObject;
        let object = at("own-b", Some("k"));
        let plain = request("DELETE", "/own-b/k", &[]);
        let privileged = user_allowed(&[Permission::Privileged]);
        assert_eq!(
            missing_for_acl(&privileged, &tenant, op, &plain, &object),
            Some(on_target(&[Permission::Delete]))
        );
        // Left to the bucket's owner and ACL alone, never the object's.
        let asked = request("DELETE", "/own-b/k", &[("x-hcp-privileged", "audit")]);
        assert_eq!(
            missing_for_acl(&privileged, &tenant, op, &asked, &object),
            Some(crate::request::acls::Needed {
                on_target: vec![Permission::Delete],
                bucket_only: true,
                ..Default::default()
            })
        );
        for how in [
            ("x-hcp-privileged", "audit"),
            ("x-amz-bypass-governance-retention", "true"),
        ] {
            let asked = request("DELETE", "/own-b/k", &[how]);
            let purger = user_allowed(&[Permission::Purge, Permission::Privileged]);
            let bypasser = user_allowed(&[
                Permission::Purge,
                Permission::Privileged,
                Permission::BypassGovernanceRetention,
            ]);
            assert!(authorize(&bypasser, &tenant, op, &asked, &object).is_ok());
            assert_eq!(
                authorize(&purger, &tenant, op, &plain, &object).map_err(|e| e.status),
                Ok(())
            );
        }
    }

    /// HCP's hold and privileged headers need its privileged permission where it keeps its
    /// retention — `false` too (on a metadata change it releases) — and only a hold asked
    /// for needs it elsewhere: `false` and `x-hcp-privileged` have no effect there.
    #[test]
    fn hcp_s_headers_need_privileged_where_hcp_s_retention_is_kept() {
        use crate::config::RetentionMode;
        let writer = user_allowed(&[Permission::Read, Permission::Write, Permission::Delete]);
        let object = at("own-b", Some("k"));
        let no_hold = request("PUT", "/own-b/k", &[("x-hcp-retentionhold", "false")]);
        let hold = request("PUT", "/own-b/k", &[("x-hcp-retentionhold", "true")]);
        let privileged = request("DELETE", "/own-b/k", &[("x-hcp-privileged", "audit")]);
        let (put, delete) = (Operation::PutObject, Operation::DeleteObject);
        let mut tenant = Tenant::for_tests();
        for mode in [
            RetentionMode::Off,
            RetentionMode::Enterprise,
            RetentionMode::Compliance,
        ] {
            tenant.retention.mode = mode;
            let kept = mode != RetentionMode::Off;
            let allowed = |op, req: &RequestHeader| authorize(&writer, &tenant, op, req, &object);
            assert_eq!(allowed(put, &no_hold).is_err(), kept, "{mode:?}");
            assert_eq!(allowed(delete, &privileged).is_err(), kept, "{mode:?}");
            assert!(allowed(put, &hold).is_err(), "{mode:?}");
        }
    }

    /// A copy's source apart; a bucket's creator may give it an ACL; a write that sets one
    /// needs write-acl, from the permissions or an ACL.
    #[test]
    fn copies_creators_and_acl_headers_left_to_acls() {
        use crate::request::acls::Needed;
        let tenant = records_tenant();
        let writer = user_allowed(&[Permission::Read, Permission::Write]);
        let copy = request("PUT", "/own-1/k", &[("x-amz-copy-source", "/b/k")]);
        let own = at("own-1", Some("k"));
        assert_eq!(
            missing_for_acl(&writer, &tenant, Operation::CopyObject, &copy, &own),
            Some(Needed {
                source_read: true,
                ..Needed::default()
            })
        );
        let admin = user_allowed(&[Permission::Admin]);
        let create = request("PUT", "/own-2", &[("x-amz-acl", "public-read")]);
        let new = at("own-2", None);
        let op = Operation::CreateBucket;
        assert!(authorize(&admin, &tenant, op, &create, &new).is_err());
        assert_eq!(
            missing_for_acl(&admin, &tenant, op, &create, &new),
            Some(Needed::default())
        );
        // A writer storing an object owns it and may give it an ACL; changing an existing
        // object's ACL needs write-acl, from the permissions or an ACL.
        let grant = ("x-amz-grant-read", "emailAddress=all_users");
        let put = request("PUT", "/own-1/k", &[grant]);
        assert_eq!(
            missing_for_acl(&writer, &tenant, Operation::PutObject, &put, &own),
            Some(Needed::default())
        );
        let change = request("PUT", "/own-1/k?acl", &[grant]);
        assert_eq!(
            missing_for_acl(&writer, &tenant, Operation::PutObjectAcl, &change, &own),
            Some(on_target(&[Permission::WriteAcl]))
        );
    }

    /// One generated request for the ACL oracle: tenant, the caller's grants (a user's, or
    /// the tenant's anonymous ones), the operation and its request.
    struct Case {
        tenant: Tenant,
        grants: Vec<Grant>,
        anonymous: bool,
        op: Operation,
        req: RequestHeader,
        target: Target,
    }

    fn identity_with(
        anonymous: bool,
        grants: Vec<Grant>,
    ) -> crate::request::authenticate::Identity {
        use crate::request::authenticate::{Identity, Principal, User};
        if anonymous {
            return Identity::for_tests(Principal::Anonymous);
        }
        let u = User::new(Some("u".into()), "dQ==".into(), "s".into(), true, grants);
        Identity::for_tests(Principal::User(std::sync::Arc::new(u)))
    }

    fn generated(rng: &mut rand::rngs::StdRng) -> Case {
        use rand::Rng;
        const HEADERS: &[(&str, &str)] = &[
            ("x-amz-acl", "public-read"),
            ("x-amz-acl", "private"),
            ("x-amz-grant-read", "emailAddress=all_users"),
            ("x-amz-object-lock-mode", "GOVERNANCE"),
            ("x-amz-object-lock-legal-hold", "ON"),
            ("x-hcp-retentionhold", "true"),
            ("x-hcp-privileged", "true"),
            ("x-amz-bypass-governance-retention", "true"),
            ("x-amz-bucket-object-lock-enabled", "true"),
            ("x-amz-copy-source", "/b/k"),
            ("x-amz-copy-source", "/other/k"),
            ("x-amz-metadata-directive", "REPLACE"),
        ];
        let methods = ["GET", "PUT", "POST", "DELETE", "HEAD"];
        let patterns = ["*", "b", "other", "own-*"];
        let random_grants = |rng: &mut rand::rngs::StdRng| {
            let perms: Vec<Permission> = Permission::ALL
                .iter()
                .copied()
                .filter(|_| rng.gen_bool(0.3))
                .collect();
            vec![Grant::new(
                "t",
                patterns[rng.gen_range(0..patterns.len())],
                perms,
            )]
        };
        let mut tenant = Tenant::for_tests();
        if rng.gen_bool(0.8) {
            tenant.records_bucket = Some("gw.records".into());
        }
        tenant.anonymous_acls = rng.gen_bool(0.5).into();
        tenant.anonymous = random_grants(rng).into();
        let grants = random_grants(rng);
        let method = methods[rng.gen_range(0..methods.len())];
        let mut req = RequestHeader::build(method, b"/b/k", None).unwrap();
        for (n, v) in HEADERS.iter().filter(|_| rng.gen_bool(0.15)) {
            req.insert_header(*n, *v).unwrap();
        }
        Case {
            tenant,
            grants,
            anonymous: rng.gen_bool(0.3),
            op: Operation::ALL[rng.gen_range(0..Operation::ALL.len())],
            req,
            target: at("b", rng.gen_bool(0.7).then_some("k")),
        }
    }

    /// What was left to ACLs is what they can grant, each lacking, and granting exactly that
    /// makes every rule allow the request.
    fn assert_only_grantable_left(c: &Case, needed: &crate::request::acls::Needed) {
        let case = format!(
            "{:?} {} {:?} {:?}",
            c.op, c.req.method, c.req.headers, c.grants
        );
        assert!(c.tenant.records_bucket.is_some(), "{case}");
        assert!(!c.anonymous || c.tenant.anonymous_acls.on(), "{case}");
        let anonymous = c.tenant.anonymous.load();
        let own = if c.anonymous { &anonymous } else { &c.grants };
        for p in &needed.on_target {
            assert!(
                crate::request::acls::FULL_CONTROL.contains(p),
                "{p:?} left: {case}"
            );
            assert!(check(own, "t", Some("b"), Some(*p)).is_err(), "{case}");
        }
        let mut more = own.to_vec();
        more.push(Grant::new("t", "b", needed.on_target.iter().copied()));
        // (A bucket's creator, and an authenticated writer of a new object, owns what it
        // creates: its write-acl on it is its owner's. A metadata change creates nothing.)
        let edit = crate::request::validate::probes::replaces_its_own_metadata(
            &c.req,
            (c.op, true),
            &c.target,
        );
        let stores = crate::request::object_owners::stores_object(c.op) && !edit;
        if c.op == Operation::CreateBucket || (stores && !c.anonymous) {
            more.push(Grant::new("t", "b", [Permission::WriteAcl]));
        }
        if needed.source_read {
            let source = c.req.headers.get("x-amz-copy-source");
            let source = source
                .and_then(|v| CopySource::parse(v.as_bytes()))
                .expect("a source");
            more.push(Grant::new("t", &source.bucket, [Permission::Read]));
        }
        let mut tenant = c.tenant.clone();
        let who = if c.anonymous {
            tenant.anonymous = more.into();
            identity_with(true, Vec::new())
        } else {
            identity_with(false, more)
        };
        assert!(
            authorize(&who, &tenant, c.op, &c.req, &c.target).is_ok(),
            "{case}"
        );
    }

    /// Oracle for the deferral to ACLs, over generated requests (every operation, methods,
    /// headers with effects, copy sources, users' grants, anonymous callers, tenants with and
    /// without records): what is left to ACLs is only ever permissions an ACL grants, each one
    /// the caller's grants lack, and granting exactly those (and a copy source's read) makes
    /// every rule allow the request — nothing else is waived.
    #[test]
    fn acls_are_left_only_what_they_can_grant() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xac15);
        let (mut deferred, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let c = generated(&mut rng);
            let who = identity_with(c.anonymous, c.grants.clone());
            if authorize(&who, &c.tenant, c.op, &c.req, &c.target).is_ok() {
                continue;
            }
            refused += 1;
            if let Some(needed) = missing_for_acl(&who, &c.tenant, c.op, &c.req, &c.target) {
                deferred += 1;
                assert_only_grantable_left(&c, &needed);
            }
        }
        assert!(
            deferred > 1_000 && refused > deferred,
            "{deferred} of {refused}"
        );
    }

    #[test]
    fn operations_need_the_expected_permission() {
        assert_eq!(
            required(Operation::GetObject, &Method::GET),
            Some(Permission::Read)
        );
        assert_eq!(
            required(Operation::PutObjectAcl, &Method::PUT),
            Some(Permission::WriteAcl)
        );
        assert_eq!(
            required(Operation::BucketSubresource, &Method::PUT),
            Some(Permission::Admin)
        );
        assert_eq!(
            required(Operation::BucketSubresource, &Method::GET),
            Some(Permission::Admin)
        );
        assert_eq!(
            required(Operation::DeleteObjects, &Method::POST),
            Some(Permission::Delete)
        );
        // (HCP asks delete too; see `required`: the writer may end its own upload here.)
        assert_eq!(
            required(Operation::AbortMultipartUpload, &Method::DELETE),
            Some(Permission::Write)
        );
        assert!(is_multipart(Operation::UploadPart) && !is_multipart(Operation::PutObject));
    }
}

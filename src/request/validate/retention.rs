//! HCP's retention headers (manual, "Retention-related request headers"): turned into the
//! effects a request has at an S3 Object Lock backend where the tenant keeps retention
//! (`retention = "enterprise"` or `"compliance"`), refused everywhere else — never dropped.
//!
//! - `x-hcp-retention` and `x-hcp-retentionhold` on PUT and copy store the new object with an
//!   Object Lock retention and legal hold (`hcp::retention::Protection`).
//! - `x-hcp-privileged` on DELETE and multi-object delete is a privileged delete: governance
//!   bypass in an enterprise namespace, refused in a compliance one.
//! - A namespace that keeps retention creates its buckets with Object Lock.
//!
//! - A copy onto itself with them changes the object's retention and hold
//!   (`request::retain`), as HCP documents.
//!
//! - On a multipart complete, they change the completed object as a copy onto itself would.
//!
//! - `x-hcp-labelretentionhold` places and releases labeled holds: the backend's legal hold is
//!   on while any hold holds, the labels kept in the tenant's labeled-holds bucket
//!   (`request::retain`); without that bucket, 501.
//!
//! Not carried out, so 501: retention on starting a multipart upload (HCP's is on completing).

use pingora::http::RequestHeader;

use crate::config::{RetentionMode, Tenant};
use crate::hcp::errors::{HcpCode, HcpError};
use crate::hcp::labels::LabelChange;
use crate::hcp::retention::{self, Context, Protection, Refusal, Setting, Value};
use crate::request::address::Target;
use crate::request::classify::{Effects, Operation};
use crate::request::sign::CopySource;

/// HCP's retention and hold headers of a write.
pub const HCP_RETENTION_HEADERS: &[&str] = &[
    "x-hcp-retention",
    "x-hcp-retentionhold",
    "x-hcp-labelretentionhold",
];

/// The privileged-delete header of DELETE and multi-object delete.
pub const PRIVILEGED: &str = "x-hcp-privileged";

fn not_offered(what: &str) -> HcpError {
    HcpError::new(HcpCode::NotImplemented).with_message(format!(
        "{what} is not supported by this bucket's storage: the object would not be protected."
    ))
}

fn invalid(message: String) -> HcpError {
    HcpError::new(HcpCode::InvalidArgument).with_message(message)
}

/// The effects HCP's retention headers give `op` in `tenant` at time `now` (seconds).
pub fn effects(
    op: Operation,
    req: &RequestHeader,
    target: &Target,
    tenant: &Tenant,
    now: i64,
) -> Result<Effects, HcpError> {
    use Operation::*;
    let mode = tenant.retention.mode;
    let mut effects = Effects {
        lock_bucket: op == CreateBucket && mode != RetentionMode::Off,
        ..Effects::default()
    };
    let header = |name: &str| {
        req.headers
            .get(name)
            .map(|v| v.to_str().map(str::trim).unwrap_or("\u{0}"))
    };
    if matches!(op, DeleteObject | DeleteObjects) {
        effects.bypass_governance = privileged_delete_asked(req, mode)?;
        return Ok(effects);
    }
    let writes = matches!(
        op,
        PutObject | CopyObject | CreateMultipartUpload | CompleteMultipartUpload
    );
    if !writes {
        return Ok(effects);
    }
    let Some(first) = HCP_RETENTION_HEADERS
        .iter()
        .find(|n| req.headers.contains_key(**n))
        .filter(|_| !done_already(op, req, target, mode))
    else {
        return Ok(effects);
    };
    refuse_what_cannot_be_kept(op, req, tenant, first)?;
    let (hold, labels) = holds_asked(req)?;
    // A change of an object as it is once stored: a copy onto itself (HCP's way to change
    // retention), and a completed multipart upload (HCP counts from the completion).
    let onto_itself = (op == CopyObject)
        .then(|| onto_itself(req, target))
        .flatten();
    if onto_itself.is_some() {
        nothing_else_changed(req)?;
    }
    if onto_itself.is_some() || op == CompleteMultipartUpload {
        if let Some(raw) = header("x-hcp-retention").filter(|_| op == CompleteMultipartUpload) {
            // What a new object cannot take (R, dates past 2106) is refused before completing.
            new_object_setting(raw, tenant, now)?;
        }
        let value = match header("x-hcp-retention") {
            None => None,
            Some(raw) => Some(
                Value::parse(raw)
                    .and_then(|v| retention::expand(v, &tenant.retention.classes))
                    .map_err(|r| refusal(&r))?,
            ),
        };
        effects.change = Some(crate::request::retain::Change {
            value,
            hold,
            labels,
            version: onto_itself.and_then(|s| s.version_id),
            ..Default::default()
        });
        return Ok(effects);
    }
    let raw = header("x-hcp-retention");
    new_object(op, raw, (hold, labels), (tenant, now), effects)
}

/// [`effects`] of a write that stores a new object with HCP's retention headers (`raw`: its
/// `x-hcp-retention`): the lock it is stored with, and what is kept once it is written.
fn new_object(
    op: Operation,
    raw: Option<&str>,
    (hold, labels): (Option<bool>, Option<Vec<LabelChange>>),
    (tenant, now): (&Tenant, i64),
    mut effects: Effects,
) -> Result<Effects, HcpError> {
    use Operation::*;
    let mode = tenant.retention.mode;
    // A new object with labels is stored on hold, then its labels kept (`request::retain`);
    // a request that only releases labels has none to keep.
    let placed = labels.as_ref().is_some_and(|l| l.iter().any(|c| c.hold));
    // (The version written is new: its lock, where a HEAD cannot read it — under a customer's
    // key —, is read by its sub-resources, `retain::head_of_change`.)
    if placed {
        effects.after_write = Some(crate::request::retain::Change {
            value: None,
            hold: Some(hold.unwrap_or(false)),
            labels,
            new_object: true,
            ..Default::default()
        });
    }
    let hold = if placed { Some(true) } else { hold };
    let setting = match raw {
        None => None,
        Some(raw) => Some(new_object_setting(raw, tenant, now)?),
    };
    // A new object "deletable at once" (`0`, a date already past) is sent with no lock — which
    // a bucket's default retention would fill in: taken off once it is written, as a complete's
    // (`retain::keep_written`).
    if setting == Some(Setting::Allowed) && matches!(op, PutObject | CopyObject) {
        let after = effects.after_write.get_or_insert_with(Default::default);
        after.value = Some(Value::Special(Setting::Allowed));
        after.new_object = true;
    }
    effects.protection = Some(Protection::of(
        setting,
        hold,
        mode == RetentionMode::Compliance,
    ));
    Ok(effects)
}

/// The holds a write asks for: the unlabeled hold (`x-hcp-retentionhold`, true or false) and
/// labels placed and released (`x-hcp-labelretentionhold`).
fn holds_asked(req: &RequestHeader) -> Result<(Option<bool>, Option<Vec<LabelChange>>), HcpError> {
    let hold = match req
        .headers
        .get("x-hcp-retentionhold")
        .map(|v| v.as_bytes().trim_ascii())
    {
        None => None,
        Some(v) if v.eq_ignore_ascii_case(b"true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case(b"false") => Some(false),
        Some(_) => return Err(invalid("x-hcp-retentionhold is true or false.".into())),
    };
    let labels = match req.headers.get("x-hcp-labelretentionhold") {
        None => None,
        Some(raw) => Some(
            crate::hcp::labels::parse(raw.as_bytes())
                .map_err(|why| invalid(format!("x-hcp-labelretentionhold: {why}.")))?,
        ),
    };
    Ok((hold, labels))
}

/// Where the tenant keeps no retention nothing is under it: what asks for none is done
/// already — but for a copy onto itself, HCP's way to change retention, which would be sent
/// on as a copy (a metadata change that drops the object's metadata).
fn done_already(op: Operation, req: &RequestHeader, target: &Target, mode: RetentionMode) -> bool {
    // (One naming a version is sent on: a recovery of it where versioning is enabled.)
    let change = || onto_itself(req, target).is_some_and(|s| s.version_id.is_none());
    mode == RetentionMode::Off
        && asks_no_protection(req)
        && (op != Operation::CopyObject || !change())
}

/// Whether HCP's retention headers ask for no protection at all: `x-hcp-retention` of
/// `0` ("Deletion Allowed"), `x-hcp-retentionhold: false`, no labeled hold — what an object
/// has anyway where the tenant keeps no retention, so that clients sending them always are
/// served there (anything else is 501).
fn asks_no_protection(req: &RequestHeader) -> bool {
    let value = |name: &str| req.headers.get(name).map(|v| v.as_bytes().trim_ascii());
    let allowed = value("x-hcp-retention").is_none_or(|v| {
        std::str::from_utf8(v)
            .ok()
            .and_then(|v| Value::parse(v).ok())
            == Some(Value::Special(Setting::Allowed))
    });
    let unheld = value("x-hcp-retentionhold").is_none_or(|v| v.eq_ignore_ascii_case(b"false"));
    allowed && unheld && !req.headers.contains_key("x-hcp-labelretentionhold")
}

/// What HCP's retention headers on a write cannot do here: anything where the tenant keeps no
/// retention, labeled holds where it has no place for them, and retention on starting a
/// multipart upload (501); with S3's own Object Lock headers beside them (400).
fn refuse_what_cannot_be_kept(
    op: Operation,
    req: &RequestHeader,
    tenant: &Tenant,
    first: &str,
) -> Result<(), HcpError> {
    if tenant.retention.mode == RetentionMode::Off {
        return Err(not_offered(&format!("The {first} header")));
    }
    if req.headers.contains_key("x-hcp-labelretentionhold")
        && tenant.retention.labels_bucket.is_none()
    {
        return Err(not_offered(
            "A labeled hold (this namespace has no labeled_holds_bucket)",
        ));
    }
    if op == Operation::CreateMultipartUpload {
        return Err(not_offered(
            "Retention on starting a multipart upload (HCP's is on completing it)",
        ));
    }
    if names_s3_lock(req) {
        return Err(invalid(
            "Give HCP's retention headers or S3 Object Lock's, not both.".into(),
        ));
    }
    Ok(())
}

/// The setting `raw` gives an object added now.
fn new_object_setting(raw: &str, tenant: &Tenant, now: i64) -> Result<Setting, HcpError> {
    let ctx = Context {
        now,
        added: now,
        current: Setting::Allowed,
    };
    Value::parse(raw)
        .and_then(|v| retention::resolve(&v, &ctx, &tenant.retention.classes))
        .and_then(retention::keepable)
        .map(|s| retention::kept_at(s, now))
        .map_err(|r| refusal(&r))
}

/// A value outside HCP's grammar, or one a new object cannot take: 400.
fn refusal(r: &Refusal) -> HcpError {
    match r {
        Refusal::Invalid(why) | Refusal::NotAllowed(why) => {
            invalid(format!("x-hcp-retention: {why}."))
        }
    }
}

/// `x-hcp-privileged`'s reason: "any valid UTF-8", which a header's visible ASCII is not all
/// of (`\0` for bytes that are no UTF-8, which [`privileged_delete`] refuses).
/// Whether a delete is HCP's privileged delete: `x-hcp-privileged`, or S3's own bypass where
/// the namespace keeps HCP's retention (authorised as one: `authorize::hcp_retention_rules`;
/// refused in compliance there). Elsewhere S3's bypass is S3's: it passes governance locks.
fn privileged_delete_asked(req: &RequestHeader, mode: RetentionMode) -> Result<bool, HcpError> {
    let privileged = match privileged_reason(req) {
        Some(value) => privileged_delete(value, mode)?,
        None => false,
    };
    let bypass = crate::request::authorize::bypass_asked(&req.headers);
    // (Where no HCP retention is kept, S3's bypass is S3's: it passes governance, as judged
    // against S3's own locks — `probes::check_retained`.)
    Ok(privileged || (mode != RetentionMode::Compliance && bypass))
}

fn privileged_reason(req: &RequestHeader) -> Option<&str> {
    req.headers.get(PRIVILEGED).map(|v| {
        std::str::from_utf8(v.as_bytes())
            .map(str::trim)
            .unwrap_or("\u{0}")
    })
}

/// `x-hcp-privileged` (any text of up to 1,024 characters): a governance bypass where the
/// namespace is enterprise; compliance allows no privileged delete.
fn privileged_delete(value: &str, mode: RetentionMode) -> Result<bool, HcpError> {
    if value.chars().count() > 1024 || value.contains('\u{0}') {
        return Err(invalid(
            "x-hcp-privileged is UTF-8 text of up to 1,024 characters.".into(),
        ));
    }
    match mode {
        // Nothing is under HCP's retention there: a privileged delete is a delete.
        RetentionMode::Off => Ok(false),
        RetentionMode::Compliance => Err(HcpError::new(HcpCode::AccessDenied).with_message(
            "This namespace keeps compliance retention: objects under retention are never deleted.",
        )),
        RetentionMode::Enterprise => Ok(true),
    }
}

/// What a backend's Object Lock can keep of the request: Huawei OBS's WORM has compliance
/// retention only — no governance mode (so no `-2`, no enterprise namespace, no bypass) and no
/// legal hold. What it cannot keep is refused before it is sent (501), never left for the
/// backend to ignore.
pub fn fits_backend(
    op: Operation,
    req: &RequestHeader,
    effects: &Effects,
    backend: &crate::config::Backend,
) -> Result<(), HcpError> {
    // s3s-fs keeps no Object Lock at all, and says nothing of the headers it drops (a
    // namespace keeping retention cannot use it: `config`).
    if backend.target.engine() == Some(crate::config::LocalEngine::S3sFs)
        && asks_object_lock(op, req, effects)
    {
        return Err(not_offered(
            "S3 Object Lock on the embedded s3s-fs engine (engine = \"store\" keeps it)",
        ));
    }
    // Ceph RGW takes a copy's Object Lock headers and keeps none of them (nor names the new
    // version): a copy that counts on them for a retention or a hold would be stored
    // unprotected. (Labels placed are kept after the write, their hold with them.)
    let ceph = backend.dialect == crate::hcp::mapping::Dialect::Ceph;
    if ceph && op == Operation::CopyObject && copy_locks_asked(req, effects) {
        return Err(not_offered(
            "Retention or a hold given with a copy (Ceph RGW keeps none: copy, then set them \
             with a copy onto itself or PUT ?retention)",
        ));
    }
    if backend.kind != crate::config::BackendKind::Obs {
        return Ok(());
    }
    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let governance = header("x-amz-object-lock-mode").is_some_and(|m| m == "GOVERNANCE")
        || header("x-amz-bypass-governance-retention").is_some()
        || effects.bypass_governance
        || effects
            .protection
            .is_some_and(|p| matches!(p.retention, Some((retention::LockMode::Governance, _))))
        || effects.change.as_ref().is_some_and(|c| {
            matches!(
                c.value,
                Some(Value::Special(retention::Setting::Unspecified))
            )
        });
    if governance {
        return Err(not_offered(
            "Governance retention (a bypass, Initial Unspecified, an enterprise namespace)",
        ));
    }
    let hold = matches!(
        op,
        Operation::GetObjectLegalHold | Operation::PutObjectLegalHold
    ) || header("x-amz-object-lock-legal-hold").is_some()
        || effects.protection.is_some_and(|p| p.hold.is_some())
        || effects
            .change
            .as_ref()
            .is_some_and(|c| c.hold.is_some() || c.labels.is_some());
    if hold {
        return Err(not_offered("A legal hold"));
    }
    Ok(())
}

/// [`fits_backend`] for a lock document as the gateway read it (a `PUT ?retention`'s, a
/// `PUT ?object-lock`'s): OBS keeps no governance retention — neither one set nor a bucket's
/// default, nor one taken off (a `<Retention>` that names none).
pub fn document_fits_backend(
    doc: &super::lock_document::LockDocument,
    backend: &crate::config::Backend,
) -> Result<(), HcpError> {
    use super::lock_document::LockDocument::{Configuration, Retention};
    let governance = matches!(
        doc,
        Retention(None | Some((retention::LockMode::Governance, _)))
            | Configuration(Some((retention::LockMode::Governance, _)))
    );
    if governance && backend.kind == crate::config::BackendKind::Obs {
        return Err(not_offered(
            "Governance retention (a retention document or a bucket's default)",
        ));
    }
    Ok(())
}

/// Whether a request asks its backend to keep anything of S3 Object Lock: a bucket made with
/// it, a write's retention or hold (S3's headers, or HCP's as Object Lock).
fn asks_object_lock(op: Operation, req: &RequestHeader, effects: &Effects) -> bool {
    let lock_enabled = || {
        req.headers
            .get("x-amz-bucket-object-lock-enabled")
            .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"true"))
    };
    effects.protection.is_some()
        || effects.change.is_some()
        || (op == Operation::CreateBucket && lock_enabled())
        || names_s3_lock(req)
}

/// Whether a request names any of S3 Object Lock's headers (`x-amz-object-lock-*`).
pub fn names_s3_lock(req: &RequestHeader) -> bool {
    req.headers
        .keys()
        .any(|n| n.as_str().starts_with("x-amz-object-lock-"))
}

/// Whether a copy asks its backend to keep a retention or a hold with the copy itself: HCP's
/// headers as Object Lock, or S3's own (labels placed are kept after the write, their hold
/// with them).
fn copy_locks_asked(req: &RequestHeader, effects: &Effects) -> bool {
    let client_lock = |name: &str| req.headers.get(name).map(|v| v.as_bytes().trim_ascii());
    effects.protection.is_some_and(|p| {
        // (A hold with labels placed is kept after the write: `effects`.)
        let labelled = effects
            .after_write
            .as_ref()
            .is_some_and(|a| a.labels.is_some());
        p.retention.is_some() || (p.hold == Some(true) && !labelled)
    }) || client_lock("x-amz-object-lock-mode").is_some()
        || client_lock("x-amz-object-lock-retain-until-date").is_some()
        || client_lock("x-amz-object-lock-legal-hold")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"ON"))
}

/// A copy onto itself that changes retention or holds is carried out as Object Lock requests,
/// not a copy: what else the copy would do would be dropped, so it is refused (S3's Object
/// Lock cannot change a stored version's metadata in place).
fn nothing_else_changed(req: &RequestHeader) -> Result<(), HcpError> {
    match also_asked(req) {
        None => Ok(()),
        Some(what) => Err(HcpError::new(HcpCode::NotImplemented).with_message(format!(
            "A copy onto itself that changes retention or holds cannot also carry {what}: \
             send it as a request of its own."
        ))),
    }
}

/// What a copy onto itself asks besides changing retention and holds: a new ACL, storage
/// class or customer's key, conditions on its source or target, and under
/// `x-amz-metadata-directive: REPLACE` new custom metadata or content headers — those a copy
/// sends (`sign::metadata_attribute`; HCP's retention examples send REPLACE with none of them).
fn also_asked(req: &RequestHeader) -> Option<&'static str> {
    let named = |name: &str| req.headers.contains_key(name);
    let names = || req.headers.keys().map(http::HeaderName::as_str);
    let replace = req
        .headers
        .get("x-amz-metadata-directive")
        .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"REPLACE"));
    if named("x-amz-acl") || names().any(|n| n.starts_with("x-amz-grant-")) {
        return Some("a new ACL");
    }
    if named("x-amz-storage-class") {
        return Some("a storage class");
    }
    if names().any(|n| n.starts_with("x-amz-server-side-encryption-customer-")) {
        return Some("a customer's encryption key");
    }
    if names().any(|n| n.starts_with("if-") || n.starts_with("x-amz-copy-source-if-")) {
        return Some("conditions");
    }
    let default_type = super::library_default_type(req);
    let metadata = |n: &str| {
        crate::request::sign::metadata_attribute(n) && !(n == "content-type" && default_type)
    };
    (replace && names().any(metadata)).then_some("new metadata")
}

/// A copy's source when it is its own target (HCP's way to change an object's retention). One
/// naming a version is that too where versioning is not enabled (HCP ignores the version
/// then); where it is, the copy is HCP's recovery of an old version (`forward`).
fn onto_itself(req: &RequestHeader, target: &Target) -> Option<CopySource> {
    req.headers
        .get("x-amz-copy-source")
        .and_then(|v| CopySource::parse(v.as_bytes()))
        .filter(|s| s.is(target))
}

#[cfg(test)]
// A test reads as one table of cases: the screen-length rule is for the request path itself.
#[allow(clippy::too_many_lines)]
mod tests {
    use super::*;

    fn tenant(mode: RetentionMode) -> Tenant {
        let mut classes = retention::Classes::new();
        classes.insert("Seven".into(), Value::parse("A+7y").unwrap());
        Tenant {
            retention: crate::config::TenantRetention {
                mode,
                classes,
                labels_bucket: None,
            },
            ..Tenant::for_tests()
        }
    }

    fn target() -> Target {
        Target {
            tenant: "t".into(),
            bucket: Some("b".into()),
            raw_key: Some(b"k"[..].into()),
            virtual_host: false,
        }
    }

    fn run(
        op: Operation,
        mode: RetentionMode,
        headers: &[(&'static str, &str)],
    ) -> Result<Effects, HcpError> {
        let mut req = RequestHeader::build("PUT", b"/b/k", None).unwrap();
        for (n, v) in headers {
            req.insert_header(*n, *v).unwrap();
        }
        effects(op, &req, &target(), &tenant(mode), 1_800_000_000)
    }

    fn code(r: Result<Effects, HcpError>) -> (u16, HcpCode) {
        let e = r.unwrap_err();
        (e.status, e.code)
    }

    #[test]
    fn retention_and_hold_become_object_lock_in_the_namespace_s_mode() {
        use crate::hcp::retention::LockMode;
        let e = run(
            Operation::PutObject,
            RetentionMode::Enterprise,
            &[("x-hcp-retention", "A+1d"), ("x-hcp-retentionhold", "TRUE")],
        )
        .unwrap();
        let p = e.protection.unwrap();
        assert_eq!(p.retention, Some((LockMode::Governance, 1_800_086_400)));
        assert_eq!(p.hold, Some(true));
        let e = run(
            Operation::CopyObject,
            RetentionMode::Compliance,
            &[
                ("x-hcp-retention", "C+Seven"),
                ("x-amz-copy-source", "/b/other"),
            ],
        )
        .unwrap();
        let (mode, _) = e.protection.unwrap().retention.unwrap();
        assert_eq!(mode, LockMode::Compliance);
        // -2 stays in governance, so that it can become 0; 0 is no retention.
        let e = run(
            Operation::PutObject,
            RetentionMode::Compliance,
            &[("x-hcp-retention", "-2")],
        );
        assert_eq!(
            e.unwrap().protection.unwrap().retention.unwrap().0,
            LockMode::Governance
        );
        let e = run(
            Operation::PutObject,
            RetentionMode::Compliance,
            &[("x-hcp-retention", "0")],
        );
        assert_eq!(e.unwrap().protection.unwrap().retention, None);
        // A retention namespace's buckets are created with Object Lock.
        let e = run(Operation::CreateBucket, RetentionMode::Enterprise, &[]).unwrap();
        assert!(e.lock_bucket);
        assert!(
            !run(Operation::CreateBucket, RetentionMode::Off, &[])
                .unwrap()
                .lock_bucket
        );
    }

    /// OBS keeps compliance retention only: governance, `-2` and holds are refused before the
    /// request is sent; a compliance retention passes.
    #[test]
    fn obs_keeps_compliance_retention_only() {
        let mut obs = crate::request::route::BackendRuntime::for_tests().settings;
        obs.kind = crate::config::BackendKind::Obs;
        let fits = |op, mode, headers: &[(&'static str, &str)]| {
            let mut req = RequestHeader::build("PUT", b"/b/k", None).unwrap();
            for (n, v) in headers {
                req.insert_header(*n, *v).unwrap();
            }
            let effects = effects(op, &req, &target(), &tenant(mode), 1_800_000_000).unwrap();
            fits_backend(op, &req, &effects, &obs).map_err(|e| e.status)
        };
        use Operation::*;
        use RetentionMode::*;
        assert_eq!(
            fits(PutObject, Compliance, &[("x-hcp-retention", "A+1d")]),
            Ok(())
        );
        assert_eq!(
            fits(PutObject, Compliance, &[("x-hcp-retention", "-2")]),
            Err(501)
        );
        assert_eq!(
            fits(PutObject, Enterprise, &[("x-hcp-retention", "A+1d")]),
            Err(501)
        );
        assert_eq!(
            fits(PutObject, Compliance, &[("x-hcp-retentionhold", "true")]),
            Err(501)
        );
        let lock = [
            ("x-amz-object-lock-mode", "GOVERNANCE"),
            (
                "x-amz-object-lock-retain-until-date",
                "2030-01-01T00:00:00Z",
            ),
        ];
        assert_eq!(fits(PutObject, Off, &lock), Err(501));
        assert_eq!(
            fits(PutObject, Off, &[("x-amz-object-lock-legal-hold", "ON")]),
            Err(501)
        );
        assert_eq!(fits(PutObjectLegalHold, Off, &[]), Err(501));
        // Elsewhere all of it passes.
        let other = crate::request::route::BackendRuntime::for_tests().settings;
        let req = RequestHeader::build("PUT", b"/b/k", None).unwrap();
        assert!(fits_backend(PutObjectLegalHold, &req, &Effects::default(), &other).is_ok());
    }

    #[test]
    fn what_cannot_be_kept_is_refused() {
        use Operation::*;
        use RetentionMode::*;
        let not_implemented = (501, HcpCode::NotImplemented);
        let invalid = (400, HcpCode::InvalidArgument);
        // Where nothing is under retention, what asks for no protection is served (nothing
        // sent of it); anything else is 501.
        for asks_none in [
            vec![("x-hcp-retention", "0")],
            vec![
                ("x-hcp-retention", "Deletion Allowed"),
                ("x-hcp-retentionhold", "false"),
            ],
            vec![("x-hcp-retentionhold", "FALSE")],
        ] {
            for op in [PutObject, CopyObject, CreateMultipartUpload] {
                let e = run(op, Off, &asks_none).unwrap();
                assert!(
                    e.protection.is_none() && e.change.is_none(),
                    "{asks_none:?}"
                );
            }
            // (A copy onto itself is HCP's change of retention: not sent on as a copy.)
            let mut onto_itself = asks_none.clone();
            onto_itself.push(("x-amz-copy-source", "/b/k"));
            assert_eq!(
                code(run(CopyObject, Off, &onto_itself)),
                not_implemented,
                "{asks_none:?}"
            );
        }
        for (op, mode, headers, expected) in [
            (
                PutObject,
                Off,
                vec![("x-hcp-retention", "A+7y")],
                not_implemented,
            ),
            (
                PutObject,
                Off,
                vec![("x-hcp-retention", "-2")],
                not_implemented,
            ),
            (
                PutObject,
                Off,
                vec![("x-hcp-retention", "0"), ("x-hcp-retentionhold", "true")],
                not_implemented,
            ),
            (
                PutObject,
                Off,
                vec![("x-hcp-retention", "0"), ("x-hcp-labelretentionhold", "[]")],
                not_implemented,
            ),
            (
                PutObject,
                Enterprise,
                vec![("x-hcp-labelretentionhold", "[]")],
                not_implemented,
            ),
            (
                CreateMultipartUpload,
                Enterprise,
                vec![("x-hcp-retention", "0")],
                not_implemented,
            ),
            (
                PutObject,
                Enterprise,
                vec![("x-hcp-retention", "soon")],
                invalid,
            ),
            (
                PutObject,
                Enterprise,
                vec![("x-hcp-retention", "R+1d")],
                invalid,
            ),
            (
                PutObject,
                Enterprise,
                vec![("x-hcp-retention", "C+Nine")],
                invalid,
            ),
            (
                PutObject,
                Enterprise,
                vec![("x-hcp-retentionhold", "yes")],
                invalid,
            ),
            (
                PutObject,
                Enterprise,
                vec![
                    ("x-hcp-retention", "0"),
                    ("x-amz-object-lock-legal-hold", "ON"),
                ],
                invalid,
            ),
            (
                DeleteObject,
                Compliance,
                vec![("x-hcp-privileged", "audit 7")],
                (403, HcpCode::AccessDenied),
            ),
        ] {
            assert_eq!(
                code(run(op, mode, &headers)),
                expected,
                "{op:?} {mode:?} {headers:?}"
            );
        }
        // A copy onto itself is a change, resolved when carried out; classes expanded now.
        let onto_itself = [
            ("x-hcp-retention", "C+Seven"),
            ("x-amz-copy-source", "/b/k"),
        ];
        let change = run(CopyObject, Enterprise, &onto_itself)
            .unwrap()
            .change
            .unwrap();
        assert_eq!(change.value, Some(Value::parse("A+7y").unwrap()));
        let unknown = [("x-hcp-retention", "C+Nine"), ("x-amz-copy-source", "/b/k")];
        assert_eq!(code(run(CopyObject, Enterprise, &unknown)), invalid);
        let privileged = run(
            Operation::DeleteObjects,
            Enterprise,
            &[("x-hcp-privileged", "x")],
        );
        assert!(privileged.unwrap().bypass_governance);
        let plain = run(Operation::DeleteObject, Off, &[("x-hcp-privileged", "x")]);
        assert!(!plain.unwrap().bypass_governance);
        let upper = [("x-hcp-retention", "A+1y"), ("x-amz-copy-source", "/B/k")];
        assert!(run(CopyObject, Enterprise, &upper)
            .unwrap()
            .change
            .is_some());
        // What else such a copy would change is refused, not dropped; HCP's own examples (REPLACE
        // with nothing else), and headers under COPY (unused) stay a change.
        let not_implemented = (501, HcpCode::NotImplemented);
        let replace = ("x-amz-metadata-directive", "replace");
        for (extra, expected) in [
            (
                vec![replace, ("x-amz-meta-author", "R")],
                Some(not_implemented),
            ),
            (vec![("x-amz-acl", "public-read")], Some(not_implemented)),
            (
                vec![("x-amz-grant-read", "id=\"u\"")],
                Some(not_implemented),
            ),
            (
                vec![("x-amz-storage-class", "STANDARD")],
                Some(not_implemented),
            ),
            (
                vec![replace, ("cache-control", "no-cache")],
                Some(not_implemented),
            ),
            (
                vec![replace, ("content-encoding", "gzip")],
                Some(not_implemented),
            ),
            (
                vec![("x-amz-copy-source-if-match", "\"e\"")],
                Some(not_implemented),
            ),
            (vec![("if-none-match", "*")], Some(not_implemented)),
            (
                vec![("x-amz-server-side-encryption-customer-algorithm", "AES256")],
                Some(not_implemented),
            ),
            (vec![("x-amz-meta-author", "R")], None),
            (vec![replace], None),
            (
                vec![replace, ("content-type", "text/plain")],
                Some(not_implemented),
            ),
            (vec![("content-type", "text/plain")], None),
            (
                vec![
                    replace,
                    (
                        "content-type",
                        "application/x-www-form-urlencoded; charset=utf-8",
                    ),
                ],
                None,
            ),
        ] {
            let mut headers = onto_itself.to_vec();
            headers.extend(extra.iter().copied());
            let got = run(CopyObject, Enterprise, &headers);
            match expected {
                Some(refused) => assert_eq!(code(got), refused, "{extra:?}"),
                None => assert!(got.unwrap().change.is_some(), "{extra:?}"),
            }
        }
        // A copy of another object takes them with its retention.
        let other = [
            ("x-hcp-retention", "A+1d"),
            ("x-amz-copy-source", "/b/other"),
            replace,
            ("x-amz-meta-author", "R"),
        ];
        assert!(run(CopyObject, Enterprise, &other)
            .unwrap()
            .protection
            .is_some());
        let long = "x".repeat(1025);
        let e = run(
            Operation::DeleteObject,
            Enterprise,
            &[("x-hcp-privileged", &long)],
        );
        assert_eq!(code(e), invalid);
        // Its reason is "any valid UTF-8"; bytes that are none are refused.
        let reason = run(
            Operation::DeleteObject,
            Enterprise,
            &[("x-hcp-privileged", "Löschung genehmigt — 監査 7")],
        );
        assert!(reason.unwrap().bypass_governance);
        let mut req = RequestHeader::build("DELETE", b"/b/k", None).unwrap();
        req.insert_header(
            "x-hcp-privileged",
            http::HeaderValue::from_bytes(b"a\xffb").unwrap(),
        )
        .unwrap();
        let e = effects(
            DeleteObject,
            &req,
            &target(),
            &tenant(Enterprise),
            1_800_000_000,
        );
        assert_eq!(code(e), invalid);
    }

    /// Labeled holds: where the namespace keeps them, a new object with a label placed is
    /// stored on hold and its labels kept afterwards (its own hold as asked); a copy onto
    /// itself changes them in place; HCP's 400s before anything is sent.
    #[test]
    fn labeled_holds_hold_the_object_and_are_kept_after() {
        use Operation::*;
        let mut t = tenant(RetentionMode::Enterprise);
        t.retention.labels_bucket = Some("holds".into());
        let with = |op, headers: &[(&'static str, &str)]| {
            let mut req = RequestHeader::build("PUT", b"/b/k", None).unwrap();
            for (n, v) in headers {
                req.insert_header(*n, *v).unwrap();
            }
            effects(op, &req, &target(), &t, 1_800_000_000)
        };
        let placed = r#"[{"id":"L1","hold":true}]"#;
        let e = with(PutObject, &[("x-hcp-labelretentionhold", placed)]).unwrap();
        assert_eq!(e.protection.unwrap().hold, Some(true));
        let after = e.after_write.unwrap();
        assert_eq!(after.hold, Some(false));
        assert!(after.new_object, "the version written is new");
        assert_eq!(after.labels.unwrap()[0].id, "L1");
        // Only releases: nothing to keep, the hold as asked.
        let released = r#"[{"id":"L1","hold":false}]"#;
        let e = with(
            PutObject,
            &[
                ("x-hcp-labelretentionhold", released),
                ("x-hcp-retentionhold", "true"),
            ],
        )
        .unwrap();
        assert!(e.after_write.is_none());
        assert_eq!(e.protection.unwrap().hold, Some(true));
        let e = with(
            CopyObject,
            &[
                ("x-hcp-labelretentionhold", released),
                ("x-amz-copy-source", "/b/k"),
            ],
        )
        .unwrap();
        assert!(e.after_write.is_none() && e.protection.is_none());
        assert!(!e.change.unwrap().labels.unwrap()[0].hold);
        let e = with(
            CompleteMultipartUpload,
            &[("x-hcp-labelretentionhold", placed)],
        )
        .unwrap();
        assert!(e.change.unwrap().labels.is_some());
        for bad in [
            "[]",
            "{}",
            r#"[{"id":"a","hold":true},{"id":"a","hold":false}]"#,
        ] {
            let e = with(PutObject, &[("x-hcp-labelretentionhold", bad)]).unwrap_err();
            assert_eq!((e.status, e.code), (400, HcpCode::InvalidArgument), "{bad}");
        }
        // OBS keeps no legal hold: a label is refused before it is sent.
        let mut obs = crate::request::route::BackendRuntime::for_tests().settings;
        obs.kind = crate::config::BackendKind::Obs;
        let req = RequestHeader::build("PUT", b"/b/k", None).unwrap();
        let e = with(
            CopyObject,
            &[
                ("x-hcp-labelretentionhold", released),
                ("x-amz-copy-source", "/b/k"),
            ],
        )
        .unwrap();
        assert_eq!(
            fits_backend(CopyObject, &req, &e, &obs).unwrap_err().status,
            501
        );
    }
}

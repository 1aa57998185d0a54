//! Phase 7 for HCP's retention change: an object copied onto itself with `x-hcp-retention` or
//! `x-hcp-retentionhold` (HCP's documented way to change them, manual "Setting retention for an
//! existing object") changes the object's Object Lock at the backend instead of copying it —
//! no new object or version. The object's current lock is read with a HEAD, HCP's change rules
//! decide (`hcp::retention::may_change`: lengthened, never shortened; `-1` never changes; no
//! change while on hold), then the gateway's own `PUT ?legal-hold` and `PUT ?retention` carry
//! it out through [`Retainer`], a typed client (the unit tests below use a fake).

use crate::hcp::labels::{Holds, LabelChange};
use crate::hcp::retention::{self, Context, LockMode, Protection, Refusal, Setting, Value};
use crate::request::validate::probes::{At, Unread};
use crate::request::*;
use forward::Call;

pub(in crate::request) mod deletes;
mod holds;

/// A change asked for, validated: the value (classes already expanded) and the hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Change {
    pub value: Option<Value>,
    pub hold: Option<bool>,
    /// Labeled holds placed and released (`x-hcp-labelretentionhold`).
    pub labels: Option<Vec<LabelChange>>,
    /// The version changed (a legal hold's `versionId`, a version just written, a copy's
    /// source version); `None`: the object as it is now.
    pub version: Option<String>,
    /// S3's own `PUT ?legal-hold` where labeled holds are kept: its hold is HCP's unlabeled
    /// hold, and it is not taken off while a label holds (403).
    pub s3_hold: bool,
    /// When the object counts as added (`A+…`) where its Last-Modified says otherwise: a
    /// completed multipart upload's is its completion (HCP's manual), which AWS dates by the
    /// upload's start.
    pub added: Option<i64>,
    /// The object is new (a completed upload's, or one just written): it takes any setting, as
    /// HCP stores one ("you can specify any retention setting"), whatever default retention
    /// the backend gave it meanwhile — nor does a hold the same request placed keep it from it.
    pub new_object: bool,
}

/// The object as the change found it, for the copy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::request) struct Changed {
    pub etag: String,
    pub last_modified: String,
    /// HCP's `x-amz-server-side-encryption` of the object (answered where the copy asked).
    pub encryption: &'static str,
}

/// The gateway's own requests of a retention change.
#[async_trait]
pub(in crate::request) trait Retainer: Send + Sync {
    /// The object's header: `Ok(None)` where the backend has no such object (404), `Err` with
    /// the status (`None`: unreachable) where it could not be read.
    async fn head(
        &self,
        at: At<'_>,
        version: Option<&str>,
    ) -> Result<Option<ResponseHeader>, Option<u16>>;
    /// `PUT ?retention` of the version: `retention` or none; the backend's status.
    async fn put_retention(
        &self,
        at: At<'_>,
        version: Option<&str>,
        retention: Option<(LockMode, i64)>,
        bypass: bool,
    ) -> Option<u16>;
    /// `PUT ?legal-hold` of the version; the backend's status.
    async fn put_hold(&self, at: At<'_>, version: Option<&str>, on: bool) -> Option<u16>;
    /// The version's recorded holds (`None`: nothing recorded); an error if unreadable.
    async fn holds(&self, at: At<'_>, version: Option<&str>) -> Result<Option<Holds>, String>;
    /// Records holds placed on the version: the unlabeled one (`true`) and labels.
    async fn record(
        &self,
        at: At<'_>,
        version: Option<&str>,
        holds: (bool, &[&str]),
    ) -> Result<(), String>;
    /// Removes the records of holds released on the version.
    async fn unrecord(
        &self,
        at: At<'_>,
        version: Option<&str>,
        holds: (bool, &[&str]),
    ) -> Result<(), String>;
    /// The version's lock as `GET ?retention` and `?legal-hold` answer it, in the form of a
    /// HEAD's answer (no ETag, date or version; 404 where the version is not there): for an
    /// object encrypted with a customer's key, which a HEAD without the key cannot read.
    /// `Refused`: the backend refuses the version id itself.
    async fn lock(&self, _: At<'_>, _: &str) -> Result<ResponseHeader, Unread> {
        Err(Unread::Failed)
    }
}

#[async_trait]
impl Retainer for Gateway {
    async fn head(
        &self,
        at: At<'_>,
        version: Option<&str>,
    ) -> Result<Option<ResponseHeader>, Option<u16>> {
        let mut params = Params::default();
        if let Some(v) = version {
            params.set("versionId", v);
        }
        let head = self.backend_call(Operation::HeadObject, params, at.target, at.route);
        match head.await {
            Some((h, _)) if h.status == 200 => Ok(Some(h)),
            Some((h, _)) if h.status == 404 => Ok(None),
            other => Err(other.map(|(h, _)| h.status.as_u16())),
        }
    }

    async fn lock(&self, at: At<'_>, version: &str) -> Result<ResponseHeader, Unread> {
        self.lock_by_subresources(at, Some(version)).await
    }

    async fn put_retention(
        &self,
        at: At<'_>,
        version: Option<&str>,
        retention: Option<(LockMode, i64)>,
        bypass: bool,
    ) -> Option<u16> {
        let xmlns = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";
        let doc = match retention {
            None => format!("<Retention {xmlns}/>"),
            Some((mode, until)) => {
                let until = time::OffsetDateTime::from_unix_timestamp(until)
                    .ok()?
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok()?;
                format!(
                    "<Retention {xmlns}><Mode>{}</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>",
                    mode.as_str()
                )
            }
        };
        let mut headers = http::HeaderMap::new();
        if bypass {
            let yes = http::HeaderValue::from_static("true");
            headers.insert("x-amz-bypass-governance-retention", yes);
        }
        let op = Operation::PutObjectRetention;
        self.put_document(op, ("retention", version), at, headers, doc.as_bytes())
            .await
    }

    async fn put_hold(&self, at: At<'_>, version: Option<&str>, on: bool) -> Option<u16> {
        let status = if on { "ON" } else { "OFF" };
        let doc = format!(
            "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{status}</Status></LegalHold>"
        );
        let op = Operation::PutObjectLegalHold;
        let headers = http::HeaderMap::new();
        self.put_document(op, ("legal-hold", version), at, headers, doc.as_bytes())
            .await
    }

    async fn holds(&self, at: At<'_>, version: Option<&str>) -> Result<Option<Holds>, String> {
        self.read_holds(at, version).await
    }

    async fn record(
        &self,
        at: At<'_>,
        version: Option<&str>,
        holds: (bool, &[&str]),
    ) -> Result<(), String> {
        self.record_holds(at, version, holds).await
    }

    async fn unrecord(
        &self,
        at: At<'_>,
        version: Option<&str>,
        holds: (bool, &[&str]),
    ) -> Result<(), String> {
        self.remove_holds(at, version, holds).await
    }
}

impl Gateway {
    /// The gateway's own `PUT ?sub` of an object's version with an XML document (Content-MD5
    /// as S3 asks for these); the backend's status.
    async fn put_document(
        &self,
        op: Operation,
        (sub, version): (&'static str, Option<&str>),
        at: At<'_>,
        mut headers: http::HeaderMap,
        doc: &[u8],
    ) -> Option<u16> {
        let xml = http::HeaderValue::from_static("application/xml");
        headers.insert(http::header::CONTENT_TYPE, xml);
        let mut params = Params::default().with(sub, "");
        if let Some(v) = version {
            params.set("versionId", v);
        }
        self.send_bytes(op, params, at, headers, doc).await
    }

    /// The gateway's own PUT of a small body held in memory (with its Content-MD5); the
    /// backend's status.
    pub(in crate::request) async fn send_bytes(
        &self,
        op: Operation,
        params: Params,
        at: At<'_>,
        headers: http::HeaderMap,
        doc: &[u8],
    ) -> Option<u16> {
        let answer = self.send_bytes_answer(op, params, at, headers, doc).await?;
        Some(answer.status.as_u16())
    }

    /// [`Gateway::send_bytes`], answered with the backend's answer header.
    pub(in crate::request) async fn send_bytes_answer(
        &self,
        op: Operation,
        params: Params,
        at: At<'_>,
        mut headers: http::HeaderMap,
        doc: &[u8],
    ) -> Option<ResponseHeader> {
        let md5 = crate::request::body::content_md5(doc);
        headers.insert("content-md5", http::HeaderValue::from_str(&md5).ok()?);
        let digest = sigv4::sha256_hex(doc);
        let req = sign::backend_request(
            sign::Outbound {
                op,
                method: &http::Method::PUT,
                params: &params,
                target: at.target,
                headers: &headers,
            },
            at.route,
            sign::BodyPlan {
                length: Some(doc.len() as u64),
                framing: BodyFraming::AsSent,
                payload_hash: &digest,
            },
            SystemTime::now(),
            &self.signing_keys,
        );
        let (header, _) = self.backend_exchange(req, Some(doc), at.route).await?;
        Some(header)
    }

    /// [`change`] of the call's object, now, in the call's tenant's retention mode (`written`:
    /// the ETag written, where the write named no version).
    async fn change_for(
        &self,
        call: &Call<'_>,
        (asked, written): (&Change, Option<&str>),
    ) -> Result<Changed, HcpError> {
        let at = At {
            target: call.target,
            route: call.route,
        };
        let compliance =
            call.route.tenant.retention.mode == crate::config::RetentionMode::Compliance;
        // Changes of one object's retention and holds take turns in this process: each reads
        // the lock and then changes it (through other instances, a lengthening sent without a
        // bypass is the backend's to refuse once it would shorten, a replacement with the
        // bypass reads the lock again just before, `unchanged_since`; the holds' protocol
        // keeps concurrent changes safe, if less tidy).
        let mut name = crate::request::validate::probes::bucket_key(at).into_bytes();
        name.push(b'\n');
        name.extend_from_slice(&call.target.key().unwrap_or_default());
        let name = String::from_utf8_lossy(&name).into_owned();
        let turn = self.hold_changes.of(name);
        let _turn = turn.lock_owned().await;
        change(self, at, (asked, written), compliance, retention::now()).await
    }

    /// HCP's retention change (`Params::effects.change`), carried out and answered as the copy
    /// that asked for it: `CopyObjectResult`, or HCP's error.
    pub(in crate::request) async fn change_retention(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
        asked: &Change,
    ) -> Flow {
        let changed = match self.change_for(call, (asked, None)).await {
            Ok(c) => c,
            Err(e) => return self.answer(s, x, e).await,
        };
        // (As every copy's answer: HCP's encryption header where the request asked.)
        let encryption = call
            .params
            .effects
            .answer_encryption
            .then_some(changed.encryption);
        let doc = copy_result(&changed);
        self.answer_own_xml_with(s, x, doc.as_bytes(), encryption)
            .await
    }

    /// S3's `PUT ?legal-hold` where labeled holds are kept: the unlabeled hold placed or
    /// released by the holds' protocol (`change`); answered as S3 answers it (200, no body).
    pub(in crate::request) async fn change_legal_hold(
        &self,
        s: &mut ServerSession,
        x: &mut Exchange,
        call: &Call<'_>,
        payload: &Payload,
    ) -> Flow {
        let doc = match self.read_document(s, x, (call.op, true), payload).await {
            Ok(doc) => doc,
            Err(stop) => return self.stop(s, x, stop).await,
        };
        let on = legal_hold_status(&doc);
        // (Counted while it was read; not held, uncounted, while the change is made.)
        drop(doc);
        let Some(on) = on else {
            let malformed = HcpError::new(HcpCode::MalformedXML)
                .with_message("A LegalHold document's Status is ON or OFF.");
            return self.answer(s, x, malformed).await;
        };
        let asked = Change {
            value: None,
            hold: Some(on),
            labels: None,
            version: call.params.get("versionId").map(str::to_string),
            s3_hold: true,
            ..Change::default()
        };
        if let Err(e) = self.change_for(call, (&asked, None)).await {
            return self.answer(s, x, e).await;
        }
        let mut resp = ResponseHeader::build(200, Some(2)).expect("status");
        resp.insert_header(http::header::CONTENT_LENGTH, "0")
            .expect("static");
        self.answer_own(s, x, resp, Bytes::new()).await
    }

    /// A `GET ?legal-hold` where labeled holds are kept, where S3's legal hold is HCP's
    /// unlabeled hold (README): the backend's is on while any hold is — a label's too —, so
    /// where the object's HEAD says on and no unlabeled hold is recorded the answer is OFF.
    /// `None`: the backend's own answer stands (sent on) — its hold off, the unlabeled hold
    /// recorded, or an object its HEAD did not find.
    pub(in crate::request) async fn legal_hold_answer(
        &self,
        call: &Call<'_>,
    ) -> Result<Option<Vec<u8>>, HcpError> {
        let at = At {
            target: call.target,
            route: call.route,
        };
        use crate::request::validate::probes::Probe as _;
        let head = self.object_answer(at, call.params.get("versionId")).await;
        let Some(head) = head.filter(|h| h.status == 200) else {
            return Ok(None);
        };
        if !crate::request::respond::rewrite::object_lock_of(&head).1 {
            return Ok(None);
        }
        let seen = self.holds_read_back(call, &head).await?;
        let off = crate::request::validate::lock_document::LockDocument::LegalHold(false);
        Ok((!seen.holds.hold).then(|| off.to_xml()))
    }

    /// What HCP's headers ask of a version once it is written: a completed multipart upload's
    /// retention, hold and labels (manual: retention is "calculated based on the time when the
    /// multipart upload was completed"), changed as a copy onto itself would change them — if
    /// that fails, the version is removed again and the error answered, never an unprotected
    /// object behind an answer; a new object's labeled holds (it was stored on hold) — if
    /// they cannot be recorded, the object stays on hold and the error is answered; and a new
    /// object's "deletable at once" over the bucket's default retention. `etag`: the ETag a
    /// copy's or a complete's document names (a PUT's is its header's).
    pub(in crate::request) async fn keep_written(
        &self,
        call: &Call<'_>,
        upstream: &ResponseHeader,
        etag: Option<&str>,
    ) -> Result<(), HcpError> {
        let effects = &call.params.effects;
        // (A metadata change of an object under no retention keeps it so, whatever default
        // the bucket gave the copy — where the copy can be read back: one under a customer's
        // key whose answer names no version, Ceph RGW's, cannot; it is left as made.)
        let unread = || {
            let keyed = upstream
                .headers
                .contains_key("x-amz-server-side-encryption-customer-algorithm");
            keyed && crate::request::acls::version_header(upstream).is_none()
        };
        let unretained = (call.guards.edit_unretained && !unread()).then(|| Change {
            value: Some(Value::Special(Setting::Allowed)),
            new_object: true,
            ..Change::default()
        });
        let asked = match call.op {
            Operation::CompleteMultipartUpload => effects.change.as_ref(),
            Operation::PutObject => effects.after_write.as_ref(),
            Operation::CopyObject => effects.after_write.as_ref().or(unretained.as_ref()),
            _ => None,
        };
        let Some(asked) = asked else {
            return Ok(());
        };
        // Boxed: only writes with retention headers get here, and every answer's future would
        // otherwise carry this one's space.
        Box::pin(self.keep_asked(call, (upstream, etag), asked)).await
    }

    /// [`Gateway::keep_written`] for a write whose headers asked for retention or holds.
    async fn keep_asked(
        &self,
        call: &Call<'_>,
        (upstream, etag): (&ResponseHeader, Option<&str>),
        asked: &Change,
    ) -> Result<(), HcpError> {
        let version = crate::request::acls::version_header(upstream)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // (HCP counts a multipart object's retention from its completion: now.)
        let completed = call.op == Operation::CompleteMultipartUpload;
        let asked = Change {
            version: version.clone(),
            added: completed.then(retention::now).or(asked.added),
            new_object: completed || asked.new_object,
            ..asked.clone()
        };
        // (A write's own ETag: a PUT's header, a copy's document.)
        let etag = etag.or_else(|| {
            let header = upstream.headers.get(http::header::ETAG);
            header.and_then(|v| v.to_str().ok())
        });
        let written = etag.filter(|_| version.is_none());
        let Err(e) = self.change_for(call, (&asked, written)).await else {
            return Ok(());
        };
        if call.op != Operation::CompleteMultipartUpload {
            let kept = if asked.value.is_some() {
                "the new object keeps the bucket's default retention"
            } else {
                "the new object is kept on hold: its labels were not kept"
            };
            return Err(e.with_cause(kept));
        }
        // The completed version, or (without versions) the object — with the gateway's
        // bypass of a governance retention the backend gave it (a bucket's default).
        let mut params = match version {
            Some(v) => Params::default().with("versionId", v),
            None => Params::default(),
        };
        params.effects.bypass_governance = true;
        let removed = self.backend_call(Operation::DeleteObject, params, call.target, call.route);
        let status = removed.await.map(|(h, _)| h.status.as_u16());
        if !matches!(status, Some(200 | 204)) {
            return Err(e.with_cause(format!(
                "the completed object kept no retention and could not be removed ({status:?})"
            )));
        }
        Err(e)
    }
}

/// The `Status` of S3's `LegalHold` document: `ON` (true) or `OFF`.
fn legal_hold_status(doc: &[u8]) -> Option<bool> {
    use crate::request::validate::lock_document::{read, LockDocument};
    match read(Operation::PutObjectLegalHold, doc, 0) {
        Ok(LockDocument::LegalHold(on)) => Some(on),
        _ => None,
    }
}

fn refused(r: Refusal) -> HcpError {
    match r {
        Refusal::Invalid(why) => {
            HcpError::new(HcpCode::InvalidArgument).with_message(format!("x-hcp-retention: {why}."))
        }
        Refusal::NotAllowed(why) => {
            HcpError::new(HcpCode::AccessDenied).with_message(format!("x-hcp-retention: {why}."))
        }
    }
}

/// Carries out `change` on the object at `at`, at time `now`, in a namespace whose retention
/// is compliance (`compliance`) or enterprise.
///
/// Holds are placed before anything else changes and released last: a failure leaves a hold
/// on, never one taken off. Where labeled holds are kept, each hold is a record of its own
/// (`holds`) and the backend's legal hold is on while any is recorded. Under concurrent changes
/// that stays true because a placement records first and then always turns the legal hold on,
/// and a release removes its records, turns the legal hold off only if none is left, and then
/// looks again — turning it back on if a placement recorded one meanwhile.
/// `written`: the ETag of the object just written, where its write's answer named no version
/// (Ceph RGW's copy) — the change is made only on an object that still has it, never on one
/// with other bytes written in the meantime.
pub(in crate::request) async fn change(
    r: &dyn Retainer,
    at: At<'_>,
    (change, written): (&Change, Option<&str>),
    compliance: bool,
    now: i64,
) -> Result<Changed, HcpError> {
    let head = head_of_change(r, at, change).await?;
    // (A date that is no date, a hold neither ON nor OFF: read as none, a change could
    // shorten what is in force or take for unset what is held.)
    if rewrite::object_lock_unreadable(&head) {
        return Err(unreadable(Some(head.status.as_u16())));
    }
    let (current, held) = rewrite::object_lock_of(&head);
    let text = |name: &str| {
        head.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    // (Another object written meanwhile is not the one asked for: nothing of it changes. The
    // one written keeps what the backend gave it.)
    if let Some(written) = written {
        if !crate::etag::listed(written, &text("etag")) {
            tracing::info!("an object written over the one just written: its change is not made");
            return Ok(Changed {
                etag: written.to_string(),
                last_modified: text("last-modified"),
                encryption: respond::rewrite::encryption_of(&head),
            });
        }
    }
    // Every later request names the version the HEAD found: a newer one may be stored
    // meanwhile, and the change is this one's — as the backend spells it (MinIO takes a
    // version id in any case, padded or braced, for the same version: the holds recorded are
    // under the backend's spelling, and a client's other one must find them).
    let found = text("x-amz-version-id") + &text("x-obs-version-id");
    let version = Some(found)
        .filter(|v| !v.is_empty())
        .or_else(|| change.version.clone());
    let version = version.as_deref();
    let holds = holds_of(r, at, version, held, change).await?;
    if change.s3_hold && !holds.after.labels.is_empty() && change.hold == Some(false) {
        return Err(HcpError::new(HcpCode::AccessDenied).with_message(
            "The object is on labeled hold: its holds change with x-hcp-labelretentionhold and \
             x-hcp-retentionhold.",
        ));
    }
    let added = change.added.unwrap_or_else(|| {
        httpdate::parse_http_date(&text("last-modified"))
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(now, |d| d.as_secs() as i64)
    });
    let held_then = holds.now.still_held(&holds.after);
    let new = match &change.value {
        None => None,
        Some(value) => new_setting(value, (current, added, now), held_then, change.new_object)?,
    };
    place_holds(r, at, version, held, &holds).await?;
    if let Some(setting) = new {
        let protection = Protection::of(Some(setting), None, compliance);
        // HCP's rules were checked above: the gateway's account replaces with a bypass only a
        // governance retention S3 would keep without one (a -2, a change of mode, a removal).
        // A lengthening goes without, so that the backend itself refuses one that a change
        // made meanwhile has turned into a shortening.
        let mode = lock_mode(&(text("x-amz-object-lock-mode") + &text("x-obs-object-lock-mode")));
        let held_by = mode.zip(retention::lock_until(current));
        // A version kept in compliance mode (S3's own, or a compliance default) stays in it
        // while that retention is in force: HCP's rules only lengthen it, and S3 never lets
        // its mode change. (One that has ended keeps nothing: the tenant's mode applies.)
        let retention = match (held_by, protection.retention) {
            (Some((LockMode::Compliance, kept)), Some((_, until))) if kept > now => {
                Some((LockMode::Compliance, until))
            }
            (_, asked) => asked,
        };
        put_retention(r, at, (version, &head), held_by, retention, now).await?;
    }
    release_holds(r, at, version, held, &holds).await?;
    Ok(Changed {
        etag: text("etag"),
        last_modified: text("last-modified"),
        encryption: respond::rewrite::encryption_of(&head),
    })
}

/// The header of the object a change is for ([`change`]), or HCP's error.
async fn head_of_change(
    r: &dyn Retainer,
    at: At<'_>,
    change: &Change,
) -> Result<ResponseHeader, HcpError> {
    match r.head(at, change.version.as_deref()).await {
        Ok(Some(head)) => Ok(head),
        Ok(None) => Err(no_such_key(at)),
        // An object encrypted with a customer's key, which a HEAD without the key cannot read
        // (400): where its version and the time it was added are known (a complete's; a
        // version just written, new: added now), its lock is read by its sub-resources.
        // (Where they are not, the change would name no version, count `A+` from now and
        // answer no ETag: it is refused.) A version id the backend refuses there too is of a
        // form it never gives: it names no version, as on HCP (404, not a 503 to retry for
        // ever).
        Err(Some(400)) if change.version.is_some() => {
            let version = change.version.as_deref().unwrap_or_default();
            let known = change.added.is_some() || change.new_object;
            match r.lock(at, version).await {
                Ok(lock) if lock.status == 404 => Err(no_such_key(at)),
                Err(Unread::Refused) => Err(no_such_key(at)),
                Ok(lock) if lock.status == 200 && known => Ok(lock),
                _ => Err(unreadable(Some(400))),
            }
        }
        // (A version that is a delete marker: S3's 405, as the request forwarded would be.)
        Err(Some(405)) if change.version.is_some() => Err(HcpError::new(HcpCode::MethodNotAllowed)),
        Err(status) => Err(unreadable(status)),
    }
}

/// Before a replacement with the bypass, which the backend would make over any retention: the
/// version's lock read again, still the one `judged`. Through another instance a change may
/// have set it meanwhile (a `-1` over the `-2` judged, a hold), which the bypass would undo or
/// HCP forbids; then 503, nothing changed — the client's next try is judged on the lock as it is. (Within this
/// process changes take turns; across instances a window of one round trip remains.)
async fn unchanged_since(
    r: &dyn Retainer,
    at: At<'_>,
    version: Option<&str>,
    judged: &ResponseHeader,
) -> Result<(), HcpError> {
    // (Its hold too: a hold placed meanwhile forbids the change.)
    let lock = |h: &ResponseHeader| {
        [
            "x-amz-object-lock-mode",
            "x-amz-object-lock-retain-until-date",
            "x-amz-object-lock-legal-hold",
        ]
        .map(|name| h.headers.get(name).map(|v| v.as_bytes().to_vec()))
    };
    let again = match (r.head(at, version).await, version) {
        (Ok(Some(again)), _) => again,
        (Ok(None), _) => return Err(changed_meanwhile()),
        // (An object encrypted with a customer's key: by its sub-resources, as it was read.)
        (Err(Some(400)), Some(version)) => r
            .lock(at, version)
            .await
            .ok()
            .filter(|lock| lock.status == 200)
            .ok_or_else(|| unreadable(Some(400)))?,
        (Err(status), _) => return Err(unreadable(status)),
    };
    match lock(&again) == lock(judged) {
        true => Ok(()),
        false => Err(changed_meanwhile()),
    }
}

fn changed_meanwhile() -> HcpError {
    HcpError::new(HcpCode::ServiceUnavailable)
        .with_message("The object's retention changed while this change was judged; try again.")
        .with_cause("the lock read again before a bypassed retention change differed")
}

/// The object (or the version named) is not there: 404, its key named.
fn no_such_key(at: At<'_>) -> HcpError {
    HcpError::new(HcpCode::NoSuchKey).with_key(at.target.key_lossy().unwrap_or_default())
}

/// The object's lock could not be read before a change: 503, nothing changed.
fn unreadable(status: Option<u16>) -> HcpError {
    HcpError::new(HcpCode::ServiceUnavailable)
        .with_message("The object could not be read; try again.")
        .with_cause(format!(
            "HEAD before a retention change answered {status:?}"
        ))
}

/// An Object Lock mode as a backend answers it.
fn lock_mode(text: &str) -> Option<LockMode> {
    match text.trim() {
        "GOVERNANCE" => Some(LockMode::Governance),
        "COMPLIANCE" => Some(LockMode::Compliance),
        _ => None,
    }
}

/// Sends the new retention of a version (`head`: the version as the change read it, held by
/// `held_by`), with the gateway's bypass only where S3 needs one ([`needs_bypass`]).
async fn put_retention(
    r: &dyn Retainer,
    at: At<'_>,
    (version, head): (Option<&str>, &ResponseHeader),
    held_by: Option<(LockMode, i64)>,
    retention: Option<(LockMode, i64)>,
    now: i64,
) -> Result<(), HcpError> {
    let bypass = needs_bypass(held_by, retention);
    if bypass {
        unchanged_since(r, at, version, head).await?;
    }
    let mut status = r.put_retention(at, version, retention, bypass).await;
    if retention.is_none() && status != Some(200) {
        // A backend that cannot remove a retention (Ceph RGW wants a mode and a date) ends
        // it instead, a moment from now.
        let ended = Some((LockMode::Governance, now + 2));
        status = r.put_retention(at, version, ended, bypass).await;
    }
    // A backend that keeps an ended compliance retention's mode (Ceph RGW refuses another
    // mode there, 403): the new retention in that mode, as while it was in force. (Only on
    // that refusal: a failure of another kind may have changed nothing, or everything.)
    if let (Some((LockMode::Compliance, _)), Some((LockMode::Governance, until)), Some(403)) =
        (held_by, retention, status)
    {
        let kept = Some((LockMode::Compliance, until));
        status = r.put_retention(at, version, kept, false).await;
    }
    if status != Some(200) {
        return Err(failed("changing the retention", status));
    }
    Ok(())
}

/// Whether replacing the retention a version is kept by (`current`: its mode and date) with
/// `new` needs S3's governance bypass: only a governance retention shortened, removed or
/// given another mode does (a compliance one cannot be shortened at all, bypass or not).
fn needs_bypass(current: Option<(LockMode, i64)>, new: Option<(LockMode, i64)>) -> bool {
    match (current, new) {
        (Some((LockMode::Governance, until)), Some((mode, new_until))) => {
            mode != LockMode::Governance || new_until < until
        }
        (Some((LockMode::Governance, _)), None) => true,
        _ => false,
    }
}

/// A backend's refusal of the gateway's own Object Lock request, as HCP's error.
fn failed(what: &str, status: Option<u16>) -> HcpError {
    match status {
        // S3: "Bucket is missing Object Lock Configuration".
        Some(400) => HcpError::new(HcpCode::InvalidArgument).with_message(
            "This bucket cannot keep retention: it was created without S3 Object Lock.",
        ),
        _ => HcpError::new(HcpCode::InternalError)
            .with_cause(format!("{what}: the backend answered {status:?}")),
    }
}

fn recording_failed(cause: String) -> HcpError {
    HcpError::new(HcpCode::InternalError).with_cause(format!("keeping the holds: {cause}"))
}

/// What the backend is to keep for HCP's `value`, asked of a version with setting `current`
/// added at `added`, at time `now` (`None`: nothing changes there): HCP's change rules, and no
/// change while a hold stays on.
fn new_setting(
    value: &Value,
    (current, added, now): (Setting, i64, i64),
    held_then: bool,
    new_object: bool,
) -> Result<Option<Setting>, HcpError> {
    let ctx = Context {
        now,
        added,
        current,
    };
    let classes = retention::Classes::new();
    let new = retention::resolve(value, &ctx, &classes)
        .and_then(retention::keepable)
        .map_err(refused)?;
    // (A new object's setting is judged as a first one: from none.)
    let judged_from = if new_object {
        Setting::Allowed
    } else {
        current
    };
    retention::may_change(judged_from, new, now).map_err(refused)?;
    // (A new object's hold is the one its own request placed.)
    if held_then && !new_object && new != current {
        return Err(HcpError::new(HcpCode::AccessDenied)
            .with_message("The object is on hold: its retention does not change."));
    }
    // What the backend keeps changes only where the kept settings differ (a date already past
    // keeps nothing).
    let kept = retention::kept_at(new, now);
    Ok(Some(kept).filter(|k| *k != retention::kept_at(current, now)))
}

/// A version's holds before and after a change.
struct HoldsChange {
    now: Holds,
    after: Holds,
    /// Whether the namespace keeps labeled holds (each hold then has its record).
    labelled: bool,
    /// Whether the unlabeled hold of `now` has its record (a hold placed by S3's own header
    /// before any label has none).
    hold_recorded: bool,
}

/// The version's holds as they are and as `change` leaves them. Where the backend's legal hold
/// is on in a namespace that keeps labeled holds, the records say which holds hold it (none
/// recorded: the unlabeled hold alone); elsewhere the backend's hold is the unlabeled hold.
async fn holds_of(
    r: &dyn Retainer,
    at: At<'_>,
    version: Option<&str>,
    held: bool,
    change: &Change,
) -> Result<HoldsChange, HcpError> {
    let labelled = at.route.tenant.retention.labels_bucket.is_some();
    let unlabeled = Holds {
        hold: held,
        labels: std::collections::BTreeSet::new(),
    };
    // Records are read whatever the backend's hold says: a record left by a failed change,
    // or one a concurrent change just wrote, is a hold (the safe reading).
    let recorded = if labelled {
        r.holds(at, version).await.map_err(|cause| {
            HcpError::new(HcpCode::ServiceUnavailable)
                .with_message("The object's holds could not be read; try again.")
                .with_cause(cause)
        })?
    } else {
        None
    };
    let hold_recorded = recorded.as_ref().is_some_and(|h| h.hold);
    let now = recorded.unwrap_or(unlabeled);
    let now = Holds {
        // (A hold nothing records is the unlabeled hold, S3's header placed it.)
        hold: now.hold || (held && now.labels.is_empty() && !hold_recorded),
        ..now
    };
    let labels = match &change.labels {
        None => now.labels.clone(),
        Some(changes) => now.apply(changes).map_err(|why| {
            HcpError::new(HcpCode::InvalidArgument)
                .with_message(format!("x-hcp-labelretentionhold: {why}."))
        })?,
    };
    let after = Holds {
        hold: change.hold.unwrap_or(now.hold),
        labels,
    };
    Ok(HoldsChange {
        now,
        after,
        labelled,
        hold_recorded,
    })
}

/// The labels of `a` that `b` lacks.
fn labels_only_in<'a>(a: &'a Holds, b: &'a Holds) -> Vec<&'a str> {
    a.labels.difference(&b.labels).map(String::as_str).collect()
}

/// Places the holds a change adds: records first, then the backend's legal hold — always,
/// even where it seemed on, since a concurrent release may be turning it off; and where
/// records exist that the backend's hold does not keep (a failed change's), it goes on too.
/// A failure is answered with the records left in place: a hold too many, never one too few.
async fn place_holds(
    r: &dyn Retainer,
    at: At<'_>,
    version: Option<&str>,
    held: bool,
    h: &HoldsChange,
) -> Result<(), HcpError> {
    let labels = labels_only_in(&h.after, &h.now);
    let hold = h.labelled && h.after.hold && !h.hold_recorded;
    let placing = hold || !labels.is_empty() || (h.after.hold && !h.now.hold);
    if !(placing || (h.after.any() && !held)) {
        return Ok(());
    }
    if h.labelled && (hold || !labels.is_empty()) {
        let recorded = r.record(at, version, (hold, &labels));
        recorded.await.map_err(recording_failed)?;
    }
    let status = r.put_hold(at, version, true).await;
    if status != Some(200) {
        return Err(failed("placing the hold", status));
    }
    Ok(())
}

/// Releases the holds a change takes off: their records first. Without labeled holds the
/// backend's hold comes off when this change leaves nothing held. With them, what is recorded
/// decides, not this change's view: the hold comes off only if no record is left, and after it
/// is off the records are listed again — one recorded meanwhile puts it back on (retried), and
/// a listing that fails puts it back on too.
async fn release_holds(
    r: &dyn Retainer,
    at: At<'_>,
    version: Option<&str>,
    held: bool,
    h: &HoldsChange,
) -> Result<(), HcpError> {
    let labels = labels_only_in(&h.now, &h.after);
    let hold = h.hold_recorded && !h.after.hold;
    if h.labelled && (hold || !labels.is_empty()) {
        let unrecord = r.unrecord(at, version, (hold, &labels));
        unrecord.await.map_err(recording_failed)?;
    }
    // A change that keeps a hold leaves the legal hold on (its records keep it so). (Two
    // changes through different instances, each keeping the label the other releases, can
    // leave it on with nothing recorded: a hold too many, released by a privileged user.)
    if !held || h.after.any() {
        return Ok(());
    }
    // (Every hold this change keeps or placed is recorded by now.)
    if h.labelled
        && r.holds(at, version)
            .await
            .map_err(recording_failed)?
            .is_some()
    {
        return Ok(());
    }
    // (The outcome of a turning off that failed is not known: it is looked at again.)
    let off = r.put_hold(at, version, false).await;
    if !h.labelled {
        return if off == Some(200) {
            Ok(())
        } else {
            Err(failed("releasing the hold", off))
        };
    }
    let still = r.holds(at, version).await;
    if matches!(still, Ok(None)) {
        return if off == Some(200) {
            Ok(())
        } else {
            Err(failed("releasing the hold", off))
        };
    }
    for _ in 0..3 {
        if r.put_hold(at, version, true).await == Some(200) {
            return match still {
                Ok(_) => Ok(()),
                Err(cause) => Err(recording_failed(format!(
                    "after releasing the hold (put back on): {cause}"
                ))),
            };
        }
    }
    Err(HcpError::new(HcpCode::InternalError)
        .with_cause("a hold recorded while the legal hold was released could not be put back on"))
}

/// The copy's answer: S3's `CopyObjectResult` for the object as it is (as HCP's examples give
/// it: S3's namespace, the date to the millisecond).
pub(in crate::request) fn copy_result(changed: &Changed) -> String {
    let iso = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let modified = httpdate::parse_http_date(&changed.last_modified)
        .ok()
        .map(|t| {
            time::OffsetDateTime::from(t)
                .format(&iso)
                .unwrap_or_default()
        })
        .unwrap_or_default();
    format!(
        "{}\n<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>{}</LastModified><ETag>{}</ETag></CopyObjectResult>",
        crate::request::respond::rewrite::HCP_DECLARATION,
        quick_xml::escape::escape(modified.as_str()),
        quick_xml::escape::escape(changed.etag.as_str())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A backend object with a lock (its legal hold changes as the requests change it), the
    /// holds' records, and the requests made of them.
    struct Fake {
        head: Option<ResponseHeader>,
        /// Encrypted with a customer's key: a HEAD without it answers 400, the lock is read
        /// by the sub-resources (`Retainer::lock`: `head`'s lock headers alone).
        sse_c: bool,
        held: Mutex<bool>,
        calls: Mutex<Vec<String>>,
        /// The records: `hold`, `label:<id>`.
        records: Mutex<std::collections::BTreeSet<String>>,
        /// A record a concurrent change adds just before this one's listing number `n` (from 1).
        concurrent: Mutex<Option<(usize, String)>>,
        listings: Mutex<usize>,
        /// A retain-until date another instance sets just after the first HEAD.
        set_meanwhile: Option<&'static str>,
        /// A hold another instance places just after the first HEAD.
        held_meanwhile: bool,
        heads: Mutex<usize>,
        /// The backend's answers to `PUT ?retention`, in turn (then 200).
        retention_answers: Mutex<Vec<u16>>,
        /// The records' listings from this one on (from 1) fail.
        listings_fail_from: Option<usize>,
        /// Writing or removing a record fails.
        records_fail: bool,
        /// The backend's answers to `PUT ?legal-hold`, in turn (then 200).
        hold_answers: Mutex<Vec<u16>>,
    }

    #[async_trait]
    impl Retainer for Fake {
        async fn head(
            &self,
            _: At<'_>,
            version: Option<&str>,
        ) -> Result<Option<ResponseHeader>, Option<u16>> {
            if self.sse_c {
                return Err(Some(400));
            }
            assert!(version.is_none_or(|v| v == "v1"), "{version:?}");
            let Some(mut h) = self.head.clone() else {
                return Ok(None);
            };
            let mut heads = self.heads.lock().unwrap();
            *heads += 1;
            if let Some(until) = self.set_meanwhile.filter(|_| *heads > 1) {
                h.insert_header("x-amz-object-lock-mode", "GOVERNANCE")
                    .unwrap();
                h.insert_header("x-amz-object-lock-retain-until-date", until)
                    .unwrap();
            }
            let on = if *self.held.lock().unwrap() || (self.held_meanwhile && *heads > 1) {
                "ON"
            } else {
                "OFF"
            };
            h.insert_header("x-amz-object-lock-legal-hold", on).unwrap();
            Ok(Some(h))
        }
        async fn lock(&self, _: At<'_>, version: &str) -> Result<ResponseHeader, Unread> {
            assert_eq!(version, "v1");
            let mut lock = ResponseHeader::build(200, None).unwrap();
            for (name, value) in &self.head.as_ref().ok_or(Unread::Failed)?.headers {
                if name.as_str().starts_with("x-amz-object-lock-") {
                    lock.insert_header(name.clone(), value.clone()).unwrap();
                }
            }
            Ok(lock)
        }
        async fn put_retention(
            &self,
            _: At<'_>,
            version: Option<&str>,
            retention: Option<(LockMode, i64)>,
            bypass: bool,
        ) -> Option<u16> {
            assert_eq!(version, Some("v1"));
            let call = format!("retention {retention:?} bypass {bypass}");
            self.calls.lock().unwrap().push(call);
            let mut answers = self.retention_answers.lock().unwrap();
            Some(match answers.is_empty() {
                true => 200,
                false => answers.remove(0),
            })
        }
        async fn put_hold(&self, _: At<'_>, version: Option<&str>, on: bool) -> Option<u16> {
            assert_eq!(version, Some("v1"));
            self.calls.lock().unwrap().push(format!("hold {on}"));
            let mut answers = self.hold_answers.lock().unwrap();
            let answer = if answers.is_empty() {
                200
            } else {
                answers.remove(0)
            };
            if answer == 200 {
                *self.held.lock().unwrap() = on;
            }
            Some(answer)
        }
        async fn holds(&self, _: At<'_>, version: Option<&str>) -> Result<Option<Holds>, String> {
            assert_eq!(version, Some("v1"));
            let n = {
                let mut listings = self.listings.lock().unwrap();
                *listings += 1;
                *listings
            };
            if self.listings_fail_from.is_some_and(|from| n >= from) {
                return Err("the records bucket answered 503".into());
            }
            let mut concurrent = self.concurrent.lock().unwrap();
            if concurrent.as_ref().is_some_and(|(at, _)| *at == n) {
                let (_, added) = concurrent.take().unwrap();
                self.records.lock().unwrap().insert(added);
            }
            let records = self.records.lock().unwrap();
            let holds = Holds {
                hold: records.contains("hold"),
                labels: records
                    .iter()
                    .filter_map(|r| r.strip_prefix("label:").map(str::to_string))
                    .collect(),
            };
            Ok(Some(holds).filter(|_| !records.is_empty()))
        }
        async fn record(
            &self,
            _: At<'_>,
            version: Option<&str>,
            (hold, labels): (bool, &[&str]),
        ) -> Result<(), String> {
            assert_eq!(version, Some("v1"));
            let call = format!("record hold {hold} labels {labels:?}");
            self.calls.lock().unwrap().push(call);
            if self.records_fail {
                return Err("the records bucket answered 500".into());
            }
            let mut records = self.records.lock().unwrap();
            if hold {
                records.insert("hold".into());
            }
            records.extend(labels.iter().map(|l| format!("label:{l}")));
            Ok(())
        }
        async fn unrecord(
            &self,
            _: At<'_>,
            version: Option<&str>,
            (hold, labels): (bool, &[&str]),
        ) -> Result<(), String> {
            assert_eq!(version, Some("v1"));
            let call = format!("unrecord hold {hold} labels {labels:?}");
            self.calls.lock().unwrap().push(call);
            if self.records_fail {
                return Err("the records bucket answered 500".into());
            }
            let mut records = self.records.lock().unwrap();
            if hold {
                records.remove("hold");
            }
            for l in labels {
                records.remove(&format!("label:{l}"));
            }
            Ok(())
        }
    }

    fn object(until: Option<&str>, hold: bool) -> Fake {
        let mut h = ResponseHeader::build(200, None).unwrap();
        h.insert_header("etag", "\"e\"").unwrap();
        h.insert_header("x-amz-version-id", "v1").unwrap();
        h.insert_header("last-modified", "Mon, 01 Jun 2026 00:00:00 GMT")
            .unwrap();
        if let Some(u) = until {
            h.insert_header("x-amz-object-lock-mode", "GOVERNANCE")
                .unwrap();
            h.insert_header("x-amz-object-lock-retain-until-date", u)
                .unwrap();
        }
        Fake {
            head: Some(h),
            sse_c: false,
            held: Mutex::new(hold),
            calls: Mutex::new(Vec::new()),
            records: Mutex::new(std::collections::BTreeSet::new()),
            concurrent: Mutex::new(None),
            listings: Mutex::new(0),
            set_meanwhile: None,
            held_meanwhile: false,
            heads: Mutex::new(0),
            retention_answers: Mutex::new(Vec::new()),
            listings_fail_from: None,
            records_fail: false,
            hold_answers: Mutex::new(Vec::new()),
        }
    }

    /// A change in a namespace without labeled holds.
    async fn run(
        fake: &Fake,
        value: Option<&str>,
        hold: Option<bool>,
    ) -> Result<Changed, HcpError> {
        run_in(false, fake, (value, hold, None), None).await
    }

    /// A change in a namespace that keeps labeled holds.
    async fn run_labels(
        fake: &Fake,
        value: Option<&str>,
        hold: Option<bool>,
        labels: Option<&str>,
    ) -> Result<Changed, HcpError> {
        run_in(true, fake, (value, hold, labels), None).await
    }

    async fn run_in(
        labelled: bool,
        fake: &Fake,
        (value, hold, labels): (Option<&str>, Option<bool>, Option<&str>),
        added: Option<i64>,
    ) -> Result<Changed, HcpError> {
        let change = Change {
            value: value.map(|v| Value::parse(v).unwrap()),
            hold,
            labels: labels.map(|l| crate::hcp::labels::parse(l.as_bytes()).unwrap()),
            version: None,
            added,
            ..Change::default()
        };
        run_change(labelled, fake, &change).await
    }

    /// `change` of object `k` in bucket `b`, where labeled holds are kept (`labelled`) or not,
    /// at 2026-06-02T00:00:00Z.
    async fn run_change(labelled: bool, fake: &Fake, change: &Change) -> Result<Changed, HcpError> {
        run_written(labelled, fake, (change, None)).await
    }

    /// [`run_change`] of an object just written with this ETag and no version named.
    async fn run_written(
        labelled: bool,
        fake: &Fake,
        change: (&Change, Option<&str>),
    ) -> Result<Changed, HcpError> {
        let mut tenant = crate::config::Tenant::for_tests();
        tenant.retention.labels_bucket = labelled.then(|| "holds".into());
        let backend = BackendRuntime::for_tests();
        let route = Route {
            tenant: &tenant,
            backend: &backend,
            backend_bucket: Some("b".into()),
            credentials: None,
        };
        let target = Target {
            tenant: "t".into(),
            bucket: Some("b".into()),
            raw_key: Some(b"k"[..].into()),
            virtual_host: false,
        };
        let at = At {
            target: &target,
            route: &route,
        };
        super::change(fake, at, change, false, 1_780_358_400).await
    }

    fn calls(fake: &Fake) -> Vec<String> {
        fake.calls.lock().unwrap().clone()
    }

    /// A version whose compliance retention has ended takes the tenant's mode; only where
    /// the backend refuses that (RGW's 403) is the change made in compliance mode — after a
    /// failure of another kind nothing more is sent (a compliance lock no one asked for).
    #[tokio::test]
    async fn an_ended_compliance_retention_is_kept_in_compliance_only_on_refusal() {
        let compliant = || {
            let fake = object(None, false);
            let mut h = fake.head.clone().unwrap();
            h.insert_header("x-amz-object-lock-mode", "COMPLIANCE")
                .unwrap();
            h.insert_header(
                "x-amz-object-lock-retain-until-date",
                "2026-06-01T12:00:00Z",
            )
            .unwrap();
            Fake {
                head: Some(h),
                ..fake
            }
        };
        let change = Change {
            value: Some(Value::parse("A+60d").unwrap()),
            ..Default::default()
        };
        let (governance, compliance) = (
            "retention Some((Governance, 1785456000)) bypass false",
            "retention Some((Compliance, 1785456000)) bypass false",
        );
        for (answers, calls_made, ok) in [
            (vec![], vec![governance], true),
            (vec![403], vec![governance, compliance], true),
            (vec![503], vec![governance], false),
            (vec![500], vec![governance], false),
        ] {
            let fake = compliant();
            *fake.retention_answers.lock().unwrap() = answers.clone();
            let done = run_change(false, &fake, &change).await;
            assert_eq!(done.is_ok(), ok, "{answers:?}: {done:?}");
            assert_eq!(calls(&fake), calls_made, "{answers:?}");
        }
    }

    /// A new object "deletable at once" whose write placed a hold (`x-hcp-retentionhold:
    /// true` beside `x-hcp-retention: 0`) has the bucket's default taken off all the same: a
    /// hold its own request placed does not keep it (before: 403, the object stored, held,
    /// under the default). Where its write named no version (RGW's copy), the change is made
    /// only on the object that still has the ETag written — never on another written
    /// meanwhile.
    #[tokio::test]
    async fn a_new_object_s_own_hold_and_etag_decide_its_change() {
        let allowed = Change {
            value: Some(Value::parse("0").unwrap()),
            new_object: true,
            ..Default::default()
        };
        let fake = object(Some("2026-06-11T00:00:00Z"), true);
        run_change(false, &fake, &allowed).await.unwrap();
        assert_eq!(calls(&fake), ["retention None bypass true"]);
        let fake = object(Some("2026-06-11T00:00:00Z"), false);
        run_written(false, &fake, (&allowed, Some("\"other\"")))
            .await
            .unwrap();
        assert!(calls(&fake).is_empty(), "{:?}", calls(&fake));
        run_written(false, &fake, (&allowed, Some("\"e\"")))
            .await
            .unwrap();
        assert_eq!(calls(&fake), ["retention None bypass true"]);
    }

    /// A completed upload is a new object: HCP gives it any setting asked, though the
    /// backend gave it the bucket's default retention meanwhile — shorter than that default,
    /// with the gateway's bypass (before: 403, "never shortened", and the version left under
    /// the default). A copy onto an object is a change, judged from what it has.
    #[tokio::test]
    async fn a_completed_upload_takes_any_setting_asked() {
        // A default retention until 2026-07-01; completed at 1_780_358_400 (2026-06-02).
        let fake = object(Some("2026-07-01T00:00:00Z"), false);
        let complete = Change {
            value: Some(Value::parse("A+1d").unwrap()),
            version: Some("v1".into()),
            added: Some(1_780_358_400),
            new_object: true,
            ..Default::default()
        };
        run_change(false, &fake, &complete).await.unwrap();
        assert_eq!(
            calls(&fake),
            ["retention Some((Governance, 1780444800)) bypass true"]
        );
        let fake = object(Some("2026-07-01T00:00:00Z"), false);
        let copy = Change {
            new_object: false,
            ..complete
        };
        let e = run_change(false, &fake, &copy).await.unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
        assert!(calls(&fake).is_empty(), "{:?}", calls(&fake));
    }

    #[tokio::test]
    async fn a_retention_is_lengthened_never_shortened() {
        // Until 2026-07-01; the object was added 2026-06-01.
        let fake = object(Some("2026-07-01T00:00:00Z"), false);
        let done = run(&fake, Some("A+60d"), None).await.unwrap();
        assert_eq!(done.etag, "\"e\"");
        // (Without the bypass: should a change meanwhile have lengthened it further, the
        // backend refuses what would now shorten it.)
        assert_eq!(
            calls(&fake),
            ["retention Some((Governance, 1785456000)) bypass false"]
        );
        let fake = object(Some("2026-07-01T00:00:00Z"), false);
        let e = run(&fake, Some("A+10d"), None).await.unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
        let e = run(&fake, Some("0"), None).await.unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
        assert!(calls(&fake).is_empty(), "{:?}", calls(&fake));
        // R counts from the current date.
        let fake = object(Some("2026-07-01T00:00:00Z"), false);
        run(&fake, Some("R+1d"), None).await.unwrap();
        assert_eq!(
            calls(&fake),
            ["retention Some((Governance, 1782950400)) bypass false"]
        );
    }

    /// A replacement with the bypass reads the lock again first: one another instance set
    /// meanwhile (a `-1` over the `-2` judged) is not undone — 503, nothing changed; one still
    /// as judged is replaced.
    #[tokio::test]
    async fn a_bypassed_change_undoes_no_change_made_meanwhile() {
        // (-2 is kept as governance until 2106-02-06, -1 until 2106-02-07.)
        let unspecified = Some("2106-02-06T00:00:00Z");
        let raced = Fake {
            set_meanwhile: Some("2106-02-07T00:00:00Z"),
            ..object(unspecified, false)
        };
        let e = run(&raced, Some("0"), None).await.unwrap_err();
        assert_eq!(e.code, HcpCode::ServiceUnavailable);
        assert!(calls(&raced).is_empty(), "{:?}", calls(&raced));
        let held = Fake {
            held_meanwhile: true,
            ..object(unspecified, false)
        };
        let e = run(&held, Some("0"), None).await.unwrap_err();
        assert_eq!(e.code, HcpCode::ServiceUnavailable);
        assert!(calls(&held).is_empty(), "{:?}", calls(&held));
        let calm = object(unspecified, false);
        run(&calm, Some("0"), None).await.unwrap();
        assert_eq!(calls(&calm), ["retention None bypass true"]);
    }

    /// A lock the HEAD says nothing readable of is no lock: nothing changes (503) — read as
    /// none, a date still in force would be removed or shortened.
    #[tokio::test]
    async fn an_unreadable_lock_changes_nothing() {
        let fake = object(Some("the year 2100"), false);
        for value in ["0", "A+1d", "-2", "-1"] {
            let e = run(&fake, Some(value), None).await.unwrap_err();
            assert_eq!(e.code, HcpCode::ServiceUnavailable, "{value}");
        }
        let e = run(&fake, None, Some(true)).await.unwrap_err();
        assert_eq!(e.code, HcpCode::ServiceUnavailable);
        assert!(calls(&fake).is_empty(), "{:?}", calls(&fake));
    }

    /// Only what S3 keeps without a bypass gets one: a governance retention shortened,
    /// removed or given another mode.
    #[test]
    fn a_bypass_only_where_s3_needs_one() {
        use LockMode::*;
        for (current, new, bypass) in [
            (Some((Governance, 100)), Some((Governance, 200)), false),
            (Some((Governance, 100)), Some((Governance, 100)), false),
            (Some((Governance, 100)), Some((Governance, 50)), true),
            (Some((Governance, 100)), Some((Compliance, 200)), true),
            (Some((Governance, 100)), None, true),
            (Some((Compliance, 100)), Some((Compliance, 200)), false),
            (Some((Compliance, 100)), Some((Compliance, 50)), false),
            (None, Some((Governance, 200)), false),
            (None, None, false),
        ] {
            assert_eq!(needs_bypass(current, new), bypass, "{current:?} → {new:?}");
        }
    }

    /// `A+…` counts from when the object was added: its Last-Modified, or where the change
    /// says otherwise (a completed multipart upload: its completion), from then.
    #[tokio::test]
    async fn added_counts_from_the_completion_where_given() {
        // Last-Modified 2026-06-01; completed 2026-06-02: A+1d is 2026-06-03.
        let fake = object(None, false);
        run_in(
            false,
            &fake,
            (Some("A+1d"), None, None),
            Some(1_780_358_400),
        )
        .await
        .unwrap();
        assert_eq!(
            calls(&fake),
            ["retention Some((Governance, 1780444800)) bypass false"]
        );
        let fake = object(None, false);
        run(&fake, Some("A+2d"), None).await.unwrap();
        assert_eq!(
            calls(&fake),
            ["retention Some((Governance, 1780444800)) bypass false"]
        );
    }

    /// An object encrypted with a customer's key (no HEAD without the key): a complete's
    /// change, whose version and time added are known, reads the lock by its sub-resources;
    /// a change that would know neither (a copy onto itself) is 503, nothing changed.
    #[tokio::test]
    async fn a_customer_keyed_object_is_changed_only_where_its_version_is_known() {
        let fake = Fake {
            sse_c: true,
            ..object(Some("2026-07-01T00:00:00Z"), false)
        };
        let copy = Change {
            value: Some(Value::parse("A+60d").unwrap()),
            ..Default::default()
        };
        let e = run_change(false, &fake, &copy).await.unwrap_err();
        assert_eq!(e.code, HcpCode::ServiceUnavailable);
        assert!(calls(&fake).is_empty(), "{:?}", calls(&fake));
        let complete = Change {
            version: Some("v1".into()),
            added: Some(1_780_358_400),
            ..copy
        };
        run_change(false, &fake, &complete).await.unwrap();
        // (Lengthened from 2026-07-01 to 60 days after the completion, without a bypass.)
        assert_eq!(
            calls(&fake),
            ["retention Some((Governance, 1785542400)) bypass false"]
        );
    }

    #[tokio::test]
    async fn holds_come_and_go_and_keep_the_retention_while_on() {
        let fake = object(Some("2026-07-01T00:00:00Z"), true);
        let e = run(&fake, Some("A+60d"), None).await.unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
        // Released and lengthened in one request: the retention first, so that a failure
        // leaves the hold on.
        run(&fake, Some("A+60d"), Some(false)).await.unwrap();
        assert_eq!(
            calls(&fake),
            [
                "retention Some((Governance, 1785456000)) bypass false",
                "hold false"
            ]
        );
        let fake = object(None, false);
        run(&fake, None, Some(true)).await.unwrap();
        assert_eq!(calls(&fake), ["hold true"]);
        // -2 becomes 0: the retention removed.
        let fake = object(Some("2106-02-06T00:00:00Z"), false);
        run(&fake, Some("0"), None).await.unwrap();
        assert_eq!(calls(&fake), ["retention None bypass true"]);
        // No object: NoSuchKey.
        let gone = Fake {
            head: None,
            ..object(None, false)
        };
        let e = run(&gone, Some("A+1d"), None).await.unwrap_err();
        assert_eq!(e.code, HcpCode::NoSuchKey);
    }

    /// Where the records fail, a hold too many, never one too few: records that cannot be
    /// listed before a change refuse it (503, nothing changed); a record that cannot be
    /// written places no hold, one that cannot be removed leaves the hold on (500); a listing
    /// that fails after the hold came off puts it back on (500); a hold that cannot be put
    /// back on is a 500 too.
    #[tokio::test]
    async fn failing_records_leave_a_hold_too_many_never_one_too_few() {
        let label = r#"[{"id":"L1","hold":true}]"#;
        let released = r#"[{"id":"L1","hold":false}]"#;
        // A held object, its one label recorded.
        let held = |fake: Fake| {
            fake.records.lock().unwrap().insert("label:L1".into());
            fake
        };
        let unlisted = Fake {
            listings_fail_from: Some(1),
            ..held(object(None, true))
        };
        let e = run_labels(&unlisted, None, None, Some(released))
            .await
            .unwrap_err();
        assert_eq!(e.code, HcpCode::ServiceUnavailable);
        assert!(calls(&unlisted).is_empty(), "{:?}", calls(&unlisted));
        let unrecorded = Fake {
            records_fail: true,
            ..object(None, false)
        };
        let e = run_labels(&unrecorded, None, None, Some(label))
            .await
            .unwrap_err();
        assert_eq!(e.code, HcpCode::InternalError);
        assert_eq!(calls(&unrecorded), [r#"record hold false labels ["L1"]"#]);
        assert!(!*unrecorded.held.lock().unwrap());
        let kept = Fake {
            records_fail: true,
            ..held(object(None, true))
        };
        let e = run_labels(&kept, None, None, Some(released))
            .await
            .unwrap_err();
        assert_eq!(e.code, HcpCode::InternalError);
        assert_eq!(calls(&kept), [r#"unrecord hold false labels ["L1"]"#]);
        assert!(*kept.held.lock().unwrap());
        // The listing after the hold came off (the third) fails: back on.
        let relisted = Fake {
            listings_fail_from: Some(3),
            ..held(object(None, true))
        };
        let e = run_labels(&relisted, None, None, Some(released))
            .await
            .unwrap_err();
        assert_eq!(e.code, HcpCode::InternalError);
        assert_eq!(
            calls(&relisted).last().map(String::as_str),
            Some("hold true")
        );
        assert!(*relisted.held.lock().unwrap());
        // … and where it cannot be put back on (three tries), a 500 all the same.
        let stuck = Fake {
            listings_fail_from: Some(3),
            hold_answers: Mutex::new(vec![200, 503, 503, 503]),
            ..held(object(None, true))
        };
        let e = run_labels(&stuck, None, None, Some(released))
            .await
            .unwrap_err();
        assert_eq!(e.code, HcpCode::InternalError);
        let tries = calls(&stuck).iter().filter(|c| *c == "hold true").count();
        assert_eq!(tries, 3, "{:?}", calls(&stuck));
    }

    /// Where labeled holds are kept each hold has its record: placed, recorded before the
    /// backend's hold goes on (always, even where it seemed on); released, its record removed
    /// and the backend's hold taken off only when no record is left — and put back on when a
    /// concurrent placement recorded one meanwhile. The unlabeled hold is its record while a
    /// label holds; no retention change while a hold stays on; HCP's limit of 100 labels.
    #[tokio::test]
    async fn labeled_holds_are_recorded_around_the_backend_s_hold() {
        let fake = object(None, false);
        let two = r#"[{"id":"L1","hold":true},{"id":"L2","hold":true}]"#;
        run_labels(&fake, None, None, Some(two)).await.unwrap();
        assert_eq!(
            calls(&fake),
            [r#"record hold false labels ["L1", "L2"]"#, "hold true"]
        );
        let e = run_labels(&fake, Some("A+60d"), None, None)
            .await
            .unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
        // The unlabeled hold placed and one label released: recorded first, released last.
        let one_off = r#"[{"id":"L1","hold":false}]"#;
        run_labels(&fake, None, Some(true), Some(one_off))
            .await
            .unwrap();
        assert_eq!(
            calls(&fake)[2..],
            [
                "record hold true labels []",
                "hold true",
                r#"unrecord hold false labels ["L1"]"#
            ]
        );
        // The unlabeled hold released: L2 still holds, the backend's hold stays on.
        run_labels(&fake, None, Some(false), None).await.unwrap();
        assert_eq!(calls(&fake)[5..], ["unrecord hold true labels []"]);
        assert!(*fake.held.lock().unwrap());
    }

    /// A release takes the backend's hold off only when no record is left, and puts it back on
    /// when a concurrent placement recorded one meanwhile; records the hold does not keep are
    /// holds; HCP's limit of 100 labels.
    #[tokio::test]
    async fn releases_take_the_hold_off_only_when_nothing_is_recorded() {
        // The last label released: its record removed, no record left (second listing), the
        // hold off — and a concurrent placement's record seen there, or after (third listing),
        // keeps it on or puts it back on.
        let last = r#"[{"id":"L2","hold":false}]"#;
        for (concurrent, expected) in [
            (None, vec!["hold false"]),
            (Some(2), vec![]),
            (Some(3), vec!["hold false", "hold true"]),
        ] {
            let racing = object(None, true);
            racing.records.lock().unwrap().insert("label:L2".into());
            *racing.concurrent.lock().unwrap() = concurrent.map(|n| (n, "label:L3".to_string()));
            run_labels(&racing, None, None, Some(last)).await.unwrap();
            assert_eq!(calls(&racing)[0], r#"unrecord hold false labels ["L2"]"#);
            assert_eq!(calls(&racing)[1..], expected, "{concurrent:?}");
            assert_eq!(*racing.held.lock().unwrap(), concurrent.is_some());
        }
        // Released and lengthened in one request: allowed, the retention first.
        let both = object(Some("2026-07-01T00:00:00Z"), true);
        both.records.lock().unwrap().insert("label:L".into());
        let off = r#"[{"id":"L","hold":false}]"#;
        run_labels(&both, Some("A+60d"), None, Some(off))
            .await
            .unwrap();
        assert_eq!(
            calls(&both)[1..],
            [r#"unrecord hold false labels ["L"]"#, "hold false"]
        );
        // A hold without records (S3's header placed it) is the unlabeled hold: a label placed
        // records it too, so that releasing the label keeps it.
        let plain = object(None, true);
        run_labels(&plain, None, None, Some(r#"[{"id":"N","hold":true}]"#))
            .await
            .unwrap();
        assert_eq!(calls(&plain)[0], r#"record hold true labels ["N"]"#);
        run_labels(&plain, None, None, Some(r#"[{"id":"N","hold":false}]"#))
            .await
            .unwrap();
        assert!(*plain.held.lock().unwrap());
        // Records on a version the backend's hold does not keep (a failed change's, or a
        // concurrent one's not yet on) are holds: a change keeps them and puts the hold on.
        let stale = object(None, false);
        stale.records.lock().unwrap().insert("label:old".into());
        run_labels(&stale, None, None, Some(r#"[{"id":"new","hold":true}]"#))
            .await
            .unwrap();
        assert_eq!(
            calls(&stale),
            [r#"record hold false labels ["new"]"#, "hold true"]
        );
        let records: Vec<String> = stale.records.lock().unwrap().iter().cloned().collect();
        assert_eq!(records, ["label:new", "label:old"]);
        let untouched = object(None, false);
        untouched.records.lock().unwrap().insert("label:old".into());
        // (A change refused — no retention change while a hold holds — changes nothing.)
        let e = run_labels(&untouched, Some("A+1d"), None, None)
            .await
            .unwrap_err();
        assert_eq!(e.code, HcpCode::AccessDenied);
        assert!(calls(&untouched).is_empty());
        // 100 active labels at most.
        let full = object(None, true);
        full.records
            .lock()
            .unwrap()
            .extend((0..100).map(|i| format!("label:l{i}")));
        let more = r#"[{"id":"x","hold":true}]"#;
        let e = run_labels(&full, None, None, Some(more)).await.unwrap_err();
        assert_eq!((e.status, e.code), (400, HcpCode::InvalidArgument));
        assert!(calls(&full).is_empty());
    }

    #[test]
    fn the_answer_is_s3_s_copy_result() {
        let doc = copy_result(&Changed {
            etag: "\"e\"".into(),
            last_modified: "Mon, 01 Jun 2026 00:00:00 GMT".into(),
            encryption: "None",
        });
        assert!(
            doc.contains("<LastModified>2026-06-01T00:00:00.000Z</LastModified>"),
            "{doc}"
        );
        assert!(doc.contains("<ETag>&quot;e&quot;</ETag>"), "{doc}");
        let ns = "<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
        assert!(doc.contains(ns), "{doc}");
    }
}
